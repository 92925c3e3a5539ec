// orders-server: see `orders-server --help` and README.md. The program is in the OrdersServer library.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import OrdersServer

exit(await runServer(arguments: Array(CommandLine.arguments.dropFirst())))
