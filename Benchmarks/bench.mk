# The benchmark suite (Benchmarks/, its own SwiftPM package). Included from the top-level Makefile;
# run from the repository root. See Benchmarks/README.md.
#
#   make bench              full run of every workload + Python's ThreadPool, tables, chart (~7 min)
#   make bench-quick        same workloads, few iterations (under 3 min once built)
#   make bench-check        malloc counts of ThreadPoolKit's and the C API's benchmarks, and the
#                           submitting thread's instructions per task (callgrind), against
#                           Benchmarks/Thresholds (fails on a regression)
#   make bench-thresholds   record those thresholds again (after a deliberate change; commit them)
#   make bench-build        just build the suite (release)
#
# Extra arguments for package-benchmark: BENCH_ARGS='--filter "W1.*"' (filters match whole names).

BENCH_DIR     := Benchmarks
BENCH_SWIFT   ?= swift
BENCH_PYTHON  ?= python3
BENCH_ARGS    ?=
# package-benchmark writes baselines, exports and thresholds inside the package directory.
BENCH_PLUGIN  := $(BENCH_SWIFT) package --allow-writing-to-package-directory benchmark
# The benchmarks that bench-check covers: ThreadPoolKit's and the C API's, except W4 (latency: slow,
# and its count follows the sample count), imap/imapUnordered and W1's applyAsync and execute, whose
# results are dropped at once (their malloc counts depend on timing: imap's moved by 20% to 4x between
# consecutive runs, W1's dropped results are reused or not, 0 to 140,000 mallocs an iteration), and
# W1 paired (it counts no mallocs: it is there for its ratio), and W6's busy round trips (the same
# code as the quiet ones, at a speed the busy thread decides: up to seconds an iteration).
BENCH_CHECKED := --filter 'W[1256].*(ThreadPoolKit|CThreadPool).*' --skip '.*imap.*' \
	--skip 'W1 tiny ThreadPoolKit\.(applyAsync|execute) w[0-9]+' --skip 'W1 paired.*' \
	--skip 'W6 roundtrip busy.*'

.PHONY: bench bench-quick bench-check bench-check-instructions bench-thresholds bench-build bench-report

bench-build:
	cd $(BENCH_DIR) && $(BENCH_SWIFT) build -c release

# Full run: package-benchmark stores it as baseline "full" (.benchmarkBaselines/, not committed); it
# is printed (results/full.txt) and its JSON copied to results/full.json (full histograms of every
# metric: what scripts/ read). Then the Swift-concurrency peers outside the harness, Python's
# ThreadPool, the tables and the chart.
bench: bench-build
	@mkdir -p $(BENCH_DIR)/results
	@{ echo "date: $$(date -u '+%Y-%m-%d %H:%M UTC')"; echo "nproc: $$(nproc)"; \
	  echo "cpu: $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"; \
	  echo "kernel: $$(uname -srm)"; echo "swift: $$($(BENCH_SWIFT) --version 2>&1 | head -1)"; \
	  echo "python: $$($(BENCH_PYTHON) --version 2>&1)"; echo "command: make bench $(BENCH_ARGS)"; \
	  echo "library sources sha256: $$(find Sources -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"; \
	} | tee $(BENCH_DIR)/results/machine.txt
	cd $(BENCH_DIR) && $(BENCH_PLUGIN) baseline update full --no-progress $(BENCH_ARGS)
	cp $(BENCH_DIR)/.benchmarkBaselines/ThreadPoolBenchmarks/full/results.json $(BENCH_DIR)/results/full.json
	cd $(BENCH_DIR) && bash -o pipefail -c '$(BENCH_PLUGIN) baseline read full --no-progress | tee results/full.txt'
	cd $(BENCH_DIR) && bash -o pipefail -c './.build/release/ConcurrencyPeers | tee results/concurrency-peers.txt'
	cd $(BENCH_DIR) && bash -o pipefail -c '$(BENCH_PYTHON) python/bench_pool.py --json results/python.json | tee results/python.txt'
	$(MAKE) --no-print-directory bench-report BENCH_RUN=full

# Tables (results/<run>.summary.md) and chart (results/<run>.png) of a run. The chart needs
# matplotlib: `pip install matplotlib`; without it only the tables are made.
BENCH_RUN ?= full
bench-report:
	cd $(BENCH_DIR) && $(BENCH_PYTHON) scripts/summarize.py results/$(BENCH_RUN).json \
	  --python results/python.json > results/$(BENCH_RUN).summary.md && cat results/$(BENCH_RUN).summary.md
	cd $(BENCH_DIR) && if $(BENCH_PYTHON) -c 'import matplotlib' 2>/dev/null; then \
	  $(BENCH_PYTHON) scripts/chart.py results/$(BENCH_RUN).json --python results/python.json -o results/$(BENCH_RUN).png; \
	else echo "matplotlib missing (pip install matplotlib): no chart"; fi

# Quick: every workload at full size (so malloc counts match the thresholds) but 1-5 iterations each;
# Python's script with 2 runs and its 10M-item map cut to 1M.
bench-quick: bench-build
	@mkdir -p $(BENCH_DIR)/results
	cd $(BENCH_DIR) && bash -o pipefail -c 'BENCH_QUICK=1 $(BENCH_PLUGIN) --no-progress $(BENCH_ARGS) | tee results/quick.txt'
	cd $(BENCH_DIR) && bash -o pipefail -c 'BENCH_QUICK=1 $(BENCH_PYTHON) python/bench_pool.py --json results/python-quick.json | tee results/python-quick.txt'

# Regression gate on allocations, after the one on instructions (bench-check-instructions: the
# machine has no hardware counters, so package-benchmark cannot count them). The benchmark tool exits 0 when every p90 malloc count is within
# the tolerance set in the benchmark's code (Support.swift: MallocTolerance), 2 on a regression, 4
# when it only found improvements; through `swift package` both of the latter become exit status 1
# and an error naming them, so the error is what tells them apart. Improvements pass, with a reminder
# to record the new thresholds.
bench-check: bench-build bench-check-instructions
	@mkdir -p $(BENCH_DIR)/results
	cd $(BENCH_DIR) && BENCH_QUICK=1 $(BENCH_PLUGIN) thresholds check --path Thresholds \
	  --metric mallocCountTotal $(BENCH_CHECKED) --no-progress $(BENCH_ARGS) > results/bench-check.txt 2>&1; \
	status=$$?; cat results/bench-check.txt; \
	if [ $$status -ne 0 ] && grep -q benchmarkThresholdImprovement results/bench-check.txt \
	  && ! grep -q benchmarkThresholdRegression results/bench-check.txt; then \
	  echo "bench-check: allocations improved beyond the tolerance; record them with 'make bench-thresholds'"; exit 0; \
	fi; \
	exit $$status

# Instructions per task of the submitting thread, counted by valgrind's callgrind (the count a
# hardware counter would give, which this VM lacks): scripts/instructions.py says how. Thresholds in
# Thresholds/instructions.json; about 10 s.
BENCH_INSTRUCTIONS := $(BENCH_PYTHON) scripts/instructions.py .build/release/InstructionCounts

bench-check-instructions: bench-build
	cd $(BENCH_DIR) && $(BENCH_INSTRUCTIONS) --check Thresholds/instructions.json

# Records the thresholds: a quick run of the checked benchmarks stored as baseline "thresholds", its
# p90 malloc counts written to Thresholds/ (package-benchmark's `thresholds update`), and the files
# renamed to what its `thresholds check` looks for (scripts/fix_threshold_names.py says why).
bench-thresholds: bench-build
	rm -f $(BENCH_DIR)/Thresholds/*.p90.json
	cd $(BENCH_DIR) && BENCH_QUICK=1 $(BENCH_PLUGIN) baseline update thresholds \
	  --metric mallocCountTotal $(BENCH_CHECKED) --no-progress $(BENCH_ARGS)
	cd $(BENCH_DIR) && $(BENCH_PLUGIN) thresholds update thresholds --path Thresholds --no-progress
	cd $(BENCH_DIR) && $(BENCH_PYTHON) scripts/fix_threshold_names.py \
	  .benchmarkBaselines/ThreadPoolBenchmarks/thresholds/results.json Thresholds
	cd $(BENCH_DIR) && $(BENCH_INSTRUCTIONS) --record Thresholds/instructions.json
