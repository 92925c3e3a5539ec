// Each worker of a thread pool holds its own SQLite connection: opened by the pool's initializer,
// kept in a ThreadLocal and reused by every task, closed by the finalizer.
// The code is in Sources/DatabaseExample (DatabaseExample.swift); this only runs it.
//
//   swift run -c release PerWorkerDatabase [--threads N] [--orders N] [DATABASE]
import DatabaseExample

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

exit(runDatabaseExample(arguments: Array(CommandLine.arguments.dropFirst())))
