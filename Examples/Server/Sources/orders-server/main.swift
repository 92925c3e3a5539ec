// orders-server: see `orders-server --help` and README.md. The program is in the OrdersServer library.
import OrdersServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

exit(await runServer(arguments: Array(CommandLine.arguments.dropFirst())))
