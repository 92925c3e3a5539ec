# Formatting and linting with swift-format (the toolchain's `swift format`), included by the
# top-level Makefile. The style is .swift-format at the repository's root, which swift format finds
# from each file's directory:
#
#   make format   rewrite the Swift files in place
#   make lint     list what `make format` would change and what the lint rules flag; fails on any
#
# FORMAT_PATHS is every Swift file of the repository: the package manifests, the library, the tests,
# the examples (with the Examples/PerWorker package) and the benchmarks (with Benchmarks/Sources).
# `--recursive` skips hidden directories, so Benchmarks/.build and Examples/PerWorker/.build, where
# SwiftPM checks out the benchmarks' dependencies, are never reformatted.
#
# The configuration is swift-format's default but for these keys (JSON has no comments, so why each
# one is here):
#   indentation 4, lineLength 120        the project's style
#   indentConditionalCompilationBlocks   false: the code keeps `#if canImport(Glibc)` and its imports at
#                                        the indentation of the code around them
#   spacesBeforeEndOfLineComments 1      `close() // why`, as the code writes end-of-line comments
#   DoNotUseSemicolons off               short closures handed to a lock keep two statements on one
#                                        line: `withLock { r in r.accepting = false; return r.items }`
#   OnlyOneTrailingClosureArgument off   a closure argument followed by a trailing closure, as in the
#                                        tests' `expectPoolError({ ... }) { try result.get() }`
# The tree is formatted with this configuration, and .ci/run runs `make lint` before the tests: a
# change that `make format` would rewrite fails CI. Run `make format` before committing.
SWIFT ?= swift
FORMAT_PATHS ?= Package.swift Sources Tests Examples Benchmarks

.PHONY: format lint

format:
	$(SWIFT) format --in-place --recursive $(FORMAT_PATHS)

lint:
	$(SWIFT) format lint --strict --recursive $(FORMAT_PATHS)
