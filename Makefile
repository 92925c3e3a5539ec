# ThreadPoolKit: the commands a user and CI run. `make help` lists them.
SWIFT ?= swift
CC ?= cc
BIN := bin
C_SOURCES := $(wildcard Sources/CThreadPool/*.c)
C_HEADERS := $(wildcard Sources/CThreadPool/*.h Sources/CThreadPool/include/*.h)
CFLAGS_STRICT := -std=c11 -Wall -Wextra -Werror -O2 -pthread -ISources/CThreadPool/include
C_TESTS := $(patsubst Tests/CThreadPoolTests/%.c,$(BIN)/%,$(wildcard Tests/CThreadPoolTests/test_*.c))

.PHONY: fuzz stress help demo test swift-test swift-test-plain swift-test-traits swift-test-release noasync-check c-test c-example c-warnings sanitize sanitize-swift sanitize-c clean

help:
	@echo "make demo      run the tutorial's two programs (InitializeWorkers, WorkerNames)"
	@echo "make test      every test: C warnings, C tests, the C example, Swift tests (no trait, all traits;"
	@echo "               the recursion tests in release too), the examples' tests"
	@echo "make sanitize  the tests under the thread and address sanitizers"
	@echo "make stress    10^7 tasks with random shutdowns, exact accounting"
	@echo "make fuzz      libFuzzer on random C API operation sequences (FUZZ_SECONDS, default 60)"
	@echo "make model-check  spin on the Promela models of the inbox and the wake handshake (Tests/Models)"
	@echo "make docs      build the DocC documentation (docs-check: fail on any warning)"
	@echo "make examples  the SQLite and zlib per-worker examples, a short load of the HTTP server (examples-test: their tests)"
	@echo "make server-bench  the HTTP server example under wrk: each pool, 3 rounds of 10 s"
	@echo "make bench     the benchmarks against NIO, Dispatch and Swift concurrency (bench-quick: short)"
	@echo "make format    format the Swift sources in place with swift format (.swift-format)"
	@echo "make lint      swift format lint --strict: what format would change, and the lint rules' findings"
	@echo "make clean     remove build products"

demo:
	$(SWIFT) build --product InitializeWorkers
	$(SWIFT) build --product WorkerNames
	@echo "== InitializeWorkers"
	@$(SWIFT) run --skip-build InitializeWorkers
	@echo "== WorkerNames"
	@$(SWIFT) run --skip-build WorkerNames

test: c-warnings c-test c-example swift-test swift-test-release noasync-check examples-test

# The package as a dependent gets it by default (no trait: no dependency built), then with every
# trait on (ServiceLifecycle, Metrics, Logging: their code and tests), in a scratch path of its own so
# that the two builds do not rebuild each other.
TRAITS := ServiceLifecycle,Metrics,Logging

swift-test: swift-test-plain swift-test-traits

swift-test-plain:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

swift-test-traits:
	$(SWIFT) build --build-tests --scratch-path .build-traits --traits $(TRAITS)
	$(SWIFT) test --skip-build --scratch-path .build-traits --traits $(TRAITS)

# The recursion tests again in a release build: inlining and frame sizes differ from debug, and the
# stack overflows they guard against showed in release where debug passed. Its own scratch path, so
# that debug and release builds do not rebuild each other.
# (`swift test` builds it: it compiles the module for @testable import, which `swift build -c release`
# does not.)
swift-test-release:
	$(SWIFT) test -c release --scratch-path .build-release --filter RecursionTests

# Every blocking API draws a diagnostic in async code (type-checks a snippet against the debug build).
noasync-check: swift-test
	SWIFT=$(SWIFT) bash scripts/check-noasync.sh

# The C target must build -Wall -Wextra clean with both compilers at hand.
c-warnings: $(C_SOURCES) $(C_HEADERS)
	@mkdir -p $(BIN)
	for cc in $(CC) $$(command -v clang gcc); do \
	  for f in $(C_SOURCES); do $$cc $(CFLAGS_STRICT) -c $$f -o $(BIN)/warnings.o || exit 1; done; \
	done
	@rm -f $(BIN)/warnings.o

# The C tests build the library with fault injection (allocation and thread creation that a test
# can make fail; see fault_injection.h) and may include its private headers.
CFLAGS_CTEST := $(CFLAGS_STRICT) -g -DCTP_FAULT_INJECTION -ISources/CThreadPool

$(BIN)/test_%: Tests/CThreadPoolTests/test_%.c $(wildcard Tests/CThreadPoolTests/*.h) $(C_SOURCES) $(C_HEADERS)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS_CTEST) $< $(C_SOURCES) -o $@

c-test: $(C_TESTS)
	@for t in $(C_TESTS); do echo "== $$t"; ./$$t || exit 1; done

$(BIN)/example: Examples/c/example.c $(C_SOURCES) $(C_HEADERS)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS_STRICT) $< $(C_SOURCES) -o $@

c-example: $(BIN)/example
	./$(BIN)/example

# libFuzzer (clang from the Swift toolchain) on random operation sequences of the C API, with ASan.
FUZZ_SECONDS ?= 60
fuzz:
	@mkdir -p $(BIN)/fuzz-corpus
	clang -std=c11 -g -O1 -pthread -fsanitize=fuzzer,address,undefined -ISources/CThreadPool/include \
	  Tests/CThreadPoolTests/fuzz/fuzz_ops.c $(C_SOURCES) -o $(BIN)/fuzz_ops 2>&1 | grep -v "Cannot export local symbol" || true
	./$(BIN)/fuzz_ops -max_total_time=$(FUZZ_SECONDS) -max_len=2048 -print_final_stats=1 $(BIN)/fuzz-corpus \
	  > $(BIN)/fuzz.log 2>&1; status=$$?; tail -8 $(BIN)/fuzz.log; exit $$status

# 10^7 tasks through applyAsync, map and imapUnordered from 4 threads, random close/terminate,
# exact accounting (STRESS_ITEMS and STRESS_SEED override the size and the seed).
stress:
	$(SWIFT) build -c release --product ThreadPoolStress
	$$($(SWIFT) build -c release --show-bin-path)/ThreadPoolStress

sanitize: sanitize-c sanitize-swift

# Separate scratch paths so that sanitized and plain builds do not rebuild each other.
sanitize-swift:
	# One test at a time under TSan: its tens-of-times slower threads, many of them polling before they
	# park, starve bounded waits of tests running beside them.
	THREADPOOLKIT_SANITIZER=thread THREADPOOLKIT_RACE_ROUNDS=1000 TSAN_OPTIONS=suppressions=$(CURDIR)/Tests/tsan.supp \
	  $(SWIFT) test --scratch-path .build-tsan --sanitize=thread --no-parallel
	# Under ASan the executor test runs 10,000 rounds of fresh pools (1,000 in make test); the
	# backpressure races run 1,000 rounds under TSan and 2,000 under ASan (10,000 in make test).
	THREADPOOLKIT_SANITIZER=address THREADPOOLKIT_EXECUTOR_ROUNDS=10000 THREADPOOLKIT_RACE_ROUNDS=2000 LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/lsan.supp $(SWIFT) test --scratch-path .build-asan --sanitize=address

# gcc's sanitizer runtimes: the Swift toolchain's clang links a TSan runtime that needs libdispatch.
# The race tests run 2,000 rounds here (CTP_RACE_ROUNDS; 10,000 in make test): sanitized rounds are
# tens of times slower.
SAN_CC ?= gcc
SAN_FLAGS := -std=c11 -Wall -Wextra -g -O1 -pthread -DCTP_FAULT_INJECTION -ISources/CThreadPool/include -ISources/CThreadPool

sanitize-c:
	@mkdir -p $(BIN)/tsan $(BIN)/asan
	for t in $(patsubst $(BIN)/%,%,$(C_TESTS)) ; do \
	  src=Tests/CThreadPoolTests/$$t.c; \
	  $(SAN_CC) $(SAN_FLAGS) -fsanitize=thread $$src $(C_SOURCES) -o $(BIN)/tsan/$$t && CTP_RACE_ROUNDS=2000 ./$(BIN)/tsan/$$t >/dev/null || exit 1; \
	  $(SAN_CC) $(SAN_FLAGS) -fsanitize=address,undefined $$src $(C_SOURCES) -o $(BIN)/asan/$$t && CTP_RACE_ROUNDS=2000 ./$(BIN)/asan/$$t >/dev/null || exit 1; \
	  echo "$$t: clean under TSan and ASan+UBSan"; \
	done
	$(SAN_CC) $(filter-out -DCTP_FAULT_INJECTION,$(SAN_FLAGS)) -fsanitize=address,undefined Examples/c/example.c $(C_SOURCES) -o $(BIN)/asan/example \
	  && ./$(BIN)/asan/example >/dev/null
	@echo "example: clean under ASan+UBSan (leaks included)"

clean:
	rm -rf .build .build-release .build-tsan .build-asan .build-traits $(BIN) Examples/PerWorker/.build

# Benchmarks (their own package under Benchmarks/): bench, bench-quick, bench-check.
-include Benchmarks/bench.mk
# Documentation (DocC): docs, docs-check.
-include scripts/docs.mk

# Examples with real per-worker resources (SQLite, zlib; their own package, Examples/PerWorker):
# examples, examples-test.
-include scripts/examples.mk
# The HTTP server example (Examples/Server): server-load, server-test; part of examples, examples-test.
-include scripts/server.mk
-include scripts/models.mk
# Formatting (swift format, configured by .swift-format): format, lint.
-include scripts/format.mk
