# The examples that use system libraries (SQLite, zlib), included by the top-level Makefile.
# They are their own SwiftPM package, Examples/PerWorker, which depends on this repository by path,
# so that ThreadPoolKit's own products stay dependency-free. Run from the repository root:
#
#   make examples        build (release) and run PerWorkerDatabase and PerWorkerCompression
#   make examples-test   the examples' tests (Swift Testing; the gunzip check runs if gunzip is installed)
#   make examples-clean  remove the examples' build products
#
# Needs the SQLite and zlib headers (Debian/Ubuntu: libsqlite3-dev zlib1g-dev; macOS: in the SDK).
# Arguments for the programs: EXAMPLES_DB_ARGS='--threads 4 /tmp/orders.sqlite',
# EXAMPLES_GZ_ARGS='--input big.log big.log.gz' (see each program's --help).

SWIFT ?= swift
EXAMPLES_DIR := Examples/PerWorker
EXAMPLES_DB_ARGS ?=
EXAMPLES_GZ_ARGS ?=

.PHONY: examples examples-build examples-test examples-clean

examples-build:
	cd $(EXAMPLES_DIR) && $(SWIFT) build -c release

examples: examples-build
	@echo "== PerWorkerDatabase"
	@cd $(EXAMPLES_DIR) && $(SWIFT) run -c release --skip-build PerWorkerDatabase $(EXAMPLES_DB_ARGS)
	@echo
	@echo "== PerWorkerCompression"
	@cd $(EXAMPLES_DIR) && $(SWIFT) run -c release --skip-build PerWorkerCompression $(EXAMPLES_GZ_ARGS)

# Building the executables first lets the tests also run the built programs on bad input.
examples-test:
	cd $(EXAMPLES_DIR) && $(SWIFT) build --build-tests
	cd $(EXAMPLES_DIR) && $(SWIFT) test --skip-build

examples-clean:
	rm -rf $(EXAMPLES_DIR)/.build
