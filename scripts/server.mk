# The HTTP server example, Examples/Server, included by the top-level Makefile. It is its own SwiftPM
# package (Hummingbird, SwiftNIO, swift-service-lifecycle; ThreadPoolKit by path), so that the
# library stays dependency-free. Run from the repository root:
#
#   make server-load    build (release) and load each pool variant for 3 s with wrk, checking answers
#   make server-bench   the figures of Examples/Server/README.md: 3 rounds of 10 s, 64 connections
#   make server-test    the server's tests (Swift Testing; they start the built server)
#   make server-clean   remove the server's build products
#
# `make examples` runs server-load, `make examples-test` (and so `make test`) runs server-test.
# Needs libsqlite3-dev; the load also wrk, curl and sqlite3 (Debian packages of those names).

SWIFT ?= swift
SERVER_DIR := Examples/Server

.PHONY: server-load server-bench server-test server-clean

server-load:
	cd $(SERVER_DIR) && SWIFT=$(SWIFT) ./load.sh --quick

server-bench:
	cd $(SERVER_DIR) && SWIFT=$(SWIFT) ./load.sh

# Building the executable first: the tests run it as a subprocess.
server-test:
	cd $(SERVER_DIR) && $(SWIFT) build --build-tests
	cd $(SERVER_DIR) && $(SWIFT) test --skip-build

server-clean:
	rm -rf $(SERVER_DIR)/.build

examples: server-load
examples-test: server-test
examples-clean: server-clean
