// The example's default input: made-up web-server log lines.
import ExampleSupport

/// About `count` bytes of made-up web-server log lines, the same on every run: text that compresses
/// about as well as real logs do.
public func generateLogText(count: Int) -> [UInt8] {
    let levels = ["INFO ", "INFO ", "INFO ", "INFO ", "INFO ", "DEBUG", "DEBUG", "WARN ", "ERROR"]
    let methods = ["GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"]
    let paths = [
        "/api/v1/orders/", "/api/v1/customers/", "/api/v1/products/", "/static/img/", "/api/v1/cart/",
        "/api/v1/search?q=", "/health", "/api/v1/invoices/",
    ]
    let statuses = ["200", "200", "200", "200", "200", "201", "204", "304", "404", "500"]
    let users = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
        "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "-",
    ]
    var random = SplitMix64(seed: 1952)
    var text: [UInt8] = []
    text.reserveCapacity(count + 200)
    var millisecond = 0
    while text.count < count {
        millisecond += random.next(below: 40)
        let seconds = millisecond / 1000
        let time =
            "2024-03-14T\(two(9 + seconds / 3600 % 15)):\(two(seconds / 60 % 60)):\(two(seconds % 60))."
            + "\(three(millisecond % 1000))Z"
        let path = paths[random.next(below: paths.count)]
        let target = path == "/health" ? path : path + String(random.next(below: 100_000))
        let line =
            "\(time) \(levels[random.next(below: levels.count)]) http-\(random.next(below: 16)) "
            + "\(methods[random.next(below: methods.count)]) \(target) \(statuses[random.next(below: statuses.count)]) "
            + "\(random.next(below: 20_000))B \(1 + random.next(below: 250))ms "
            + "user=\(users[random.next(below: users.count)])\n"
        text.append(contentsOf: line.utf8)
    }
    return Array(text.prefix(count))
}

private func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
private func three(_ value: Int) -> String { value < 10 ? "00\(value)" : value < 100 ? "0\(value)" : "\(value)" }
