// Each worker of a thread pool holds its own zlib deflate stream and buffer: made by the pool's
// initializer, kept in a ThreadLocal and reused (deflateReset) for every block, freed by the
// finalizer. imap returns the compressed blocks in order; they are written as one gzip file.
// The code is in Sources/CompressionExample (CompressionExample.swift); this only runs it.
//
//   swift run -c release PerWorkerCompression [--input FILE] [OUTPUT.gz]
import CompressionExample

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

exit(runCompressionExample(arguments: Array(CommandLine.arguments.dropFirst())))
