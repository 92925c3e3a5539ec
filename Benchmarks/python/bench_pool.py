#!/usr/bin/env python3
"""Python's own multiprocessing.pool.ThreadPool on ThreadPoolKit's workloads 1, 2 and 5.

The numbers printed are comparable with the Swift suite's "ns/task" and wall-clock figures: same
sizes, same work per item, same worker counts, the median of several runs, each run timed with
time.perf_counter_ns() from the first submit until every result is in. The pool is created before
and closed after the timed region, as in the Swift benchmarks.

    python3 bench_pool.py                 # full sizes, 5 runs each
    BENCH_QUICK=1 python3 bench_pool.py   # 2 runs each, and the 10M-item map shrunk to 1M
    python3 bench_pool.py --json out.json # also write the medians as JSON (scripts/ read it)
"""

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import threading
import time
from multiprocessing.pool import ThreadPool

QUICK = os.environ.get("BENCH_QUICK", "0") not in ("", "0")
RUNS = 2 if QUICK else 5

TINY_TASKS = 200_000          # workload 1
ITEMS = 100_000               # workload 2, chunk size 1
BIG_ITEMS = 1_000_000 if QUICK else 10_000_000  # workload 2, default chunk size
BLOCKING_TASKS = 64           # workload 5
BLOCKING_SECONDS = 0.010
BLOCKING_WORKERS = 8


def f(x):
    return x * x + 1


def timed(run, runs=RUNS):
    """Median wall-clock seconds of `runs` calls of run(), which returns its own elapsed ns."""
    samples = [run() for _ in range(runs)]
    return statistics.median(samples) / 1e9, [s / 1e9 for s in samples]


def with_pool(workers, body):
    """Returns a runner that creates a pool, times body(pool), and closes the pool."""
    def run():
        pool = ThreadPool(workers)
        try:
            start = time.perf_counter_ns()
            body(pool)
            return time.perf_counter_ns() - start
        finally:
            pool.close()
            pool.join()
    return run


# ---- workload 1: tiny tasks ---------------------------------------------------------------------

def tiny_apply_async(pool):
    counter = itertools.count()   # next() on it is atomic under the GIL: the "shared atomic"
    results = [pool.apply_async(next, (counter,)) for _ in range(TINY_TASKS)]
    for r in results:
        r.wait()
    assert next(counter) == TINY_TASKS


def tiny_apply_async_countdown(pool):
    """As the Swift suite waits: completions are counted (here in the result callback, which Python
    runs on its result-handler thread) and the last one sets an Event; the AsyncResults are dropped."""
    counter = itertools.count()
    done = threading.Event()
    completed = itertools.count(1)

    def callback(_):
        if next(completed) == TINY_TASKS:
            done.set()

    for _ in range(TINY_TASKS):
        pool.apply_async(next, (counter,), callback=callback)
    done.wait()
    assert next(counter) == TINY_TASKS


# ---- workload 2: one task per item, and 10M items -------------------------------------------------

def map_chunk1(pool):
    out = pool.map(f, range(ITEMS), chunksize=1)
    assert len(out) == ITEMS and out[-1] == f(ITEMS - 1)


def imap_chunk1(pool):
    out = list(pool.imap(f, range(ITEMS), chunksize=1))
    assert len(out) == ITEMS and out[-1] == f(ITEMS - 1)


def imap_unordered_chunk1(pool):
    out = list(pool.imap_unordered(f, range(ITEMS), chunksize=1))
    assert len(out) == ITEMS


def map_big_default(pool):
    out = pool.map(f, range(BIG_ITEMS))
    assert len(out) == BIG_ITEMS


def inline_big():
    start = time.perf_counter_ns()
    out = [f(x) for x in range(BIG_ITEMS)]
    elapsed = time.perf_counter_ns() - start
    assert len(out) == BIG_ITEMS
    return elapsed


# ---- workload 5: blocking tasks ------------------------------------------------------------------

def blocking(pool):
    pool.map(time.sleep, [BLOCKING_SECONDS] * BLOCKING_TASKS, chunksize=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the results as JSON to this file")
    args = parser.parse_args()

    cases = []  # (name, tasks, runner)
    for workers in (2, 4):
        cases.append((f"W1 tiny ThreadPool.apply_async+wait w{workers}", TINY_TASKS,
                      with_pool(workers, tiny_apply_async)))
        cases.append((f"W1 tiny ThreadPool.apply_async+callback countdown w{workers}", TINY_TASKS,
                      with_pool(workers, tiny_apply_async_countdown)))
    for workers in (2, 4):
        cases.append((f"W2 items ThreadPool.map chunk1 w{workers}", ITEMS, with_pool(workers, map_chunk1)))
        cases.append((f"W2 items ThreadPool.imap chunk1 w{workers}", ITEMS, with_pool(workers, imap_chunk1)))
        cases.append((f"W2 items ThreadPool.imap_unordered chunk1 w{workers}", ITEMS,
                      with_pool(workers, imap_unordered_chunk1)))
    big = "10M" if BIG_ITEMS == 10_000_000 else f"{BIG_ITEMS // 1_000_000}M"
    cases.append((f"W2 {big} inline list comprehension", BIG_ITEMS, inline_big))
    for workers in (2, 4):
        cases.append((f"W2 {big} ThreadPool.map default chunk w{workers}", BIG_ITEMS,
                      with_pool(workers, map_big_default)))
    cases.append((f"W5 blocking ThreadPool.map(sleep) w{BLOCKING_WORKERS}", BLOCKING_TASKS,
                  with_pool(BLOCKING_WORKERS, blocking)))

    print(f"Python {platform.python_version()} ({platform.python_implementation()}), "
          f"multiprocessing.pool.ThreadPool, {RUNS} runs each{' (BENCH_QUICK)' if QUICK else ''}")
    print(f"{'benchmark':58} {'tasks':>10} {'median ms':>11} {'ns/task':>10} {'tasks/s':>12}")
    results = []
    for name, tasks, runner in cases:
        median, samples = timed(runner)
        ns_per_task = median * 1e9 / tasks
        results.append({"name": name, "tasks": tasks, "median_s": median, "samples_s": samples,
                        "ns_per_task": ns_per_task, "tasks_per_s": tasks / median})
        print(f"{name:58} {tasks:>10,} {median * 1e3:>11.1f} {ns_per_task:>10.0f} {tasks / median:>12,.0f}",
              flush=True)

    if args.json:
        with open(args.json, "w") as out:
            json.dump({"python": platform.python_version(), "quick": QUICK, "runs": RUNS,
                       "results": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
