#!/usr/bin/env python3
"""Markdown tables (medians, per-task figures, same-run ratios) and the target check from a run.

    python3 scripts/summarize.py results/full.json [--python results/python.json] > results/summary.md

Every figure is a median (p50) over the benchmark's iterations, except W4 whose percentiles are over
the 10,000 latency samples. "per task" = median wall clock of an iteration / the tasks it ran;
"mallocs/task" = median mallocCountTotal of an iteration / the tasks it ran (all threads of the
process, counted by package-benchmark's malloc interposer). Ratios compare benchmarks of the same run:
"x TPK" = this benchmark's time / ThreadPoolKit's time for the same workload and worker count (above 1:
ThreadPoolKit is faster). Python ran in a separate process after the Swift suite, so its ratio is
across runs.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchjson as bj  # noqa: E402


def fmt(value, digits=0, unit=""):
    if value is None:
        return "n/a"
    if digits == 0:
        return f"{value:,.0f}{unit}"
    return f"{value:,.{digits}f}{unit}"


def ratio(value, reference):
    if value is None or reference is None or reference == 0:
        return "n/a"
    return f"{value / reference:.2f}x"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def per_task_rows(e, py, names, reference_for, python_names=()):
    rows = []
    for name in names:
        if name not in e:
            continue
        ns = bj.ns_per_task(e, name)
        ref = reference_for(name)
        rows.append([f"`{name}`", bj.samples(e, name, bj.WALL), fmt(bj.wall_ms(e, name), 1),
                     fmt(ns, 0 if ns and ns >= 10 else 1), cpu_cell(e, name),
                     ratio(ns, bj.ns_per_task(e, ref)) if ref else "",
                     fmt(bj.per_task(e, name, bj.MALLOCS), 2),
                     fmt(bj.per_task(e, name, bj.CTX), 3)])
    if py:
        for pname, ref in python_names:
            r = py["by_name"].get(pname)
            if r is None:
                continue
            rows.append([f"Python `{pname}`", len(r["samples_s"]), fmt(r["median_s"] * 1e3, 1), fmt(r["ns_per_task"]), "n/a",
                         ratio(r["ns_per_task"], bj.ns_per_task(e, ref)) if ref else "", "n/a", "n/a"])
    return rows


PAIRED_TPK, PAIRED_NIO, PAIRED_RATIO = "TPK ns/task", "NIO ns/task", "NIO/TPK x100"

HEADER = ["benchmark", "iterations", "median ms", "ns/task", "cpu ns/task", "x TPK", "mallocs/task", "ctx switches/task"]


def cpu_cell(e, name):
    """Median CPU time of every thread per task (custom metric, ns), or n/a for runs without it."""
    cpu = bj.per_task(e, name, bj.CPU_NS)
    return fmt(cpu, 0 if cpu is None or cpu >= 10 else 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run", help="a stored run: results/NAME.json")
    parser.add_argument("--python")
    args = parser.parse_args()
    e, run_info = bj.load_run(args.run)
    py = bj.load_python(args.python) if args.python else None
    out = []

    # ---- W1
    w1 = []
    for w in (2, 4):
        w1 += [f"W1 tiny ThreadPoolKit.applyAsync w{w}", f"W1 tiny ThreadPoolKit.applyAsync+wait w{w}",
               f"W1 tiny ThreadPoolKit.execute w{w}",
               f"W1 tiny CThreadPool.ctp_pool_submit w{w}", f"W1 tiny NIOThreadPool.submit w{w}",
               f"W1 tiny NIOThreadPool.runIfActive w{w}"]
    w1 += ["W1 tiny Dispatch.concurrentQueue+group", "W1 tiny Dispatch.concurrentPerform",
           "W1 tiny withTaskGroup", "W1 tiny withDiscardingTaskGroup", "W1 tiny pthread_create per task"]

    def ref_w1(name):
        return f"W1 tiny ThreadPoolKit.applyAsync w{bj.workers(name) or 2}"
    py_w1 = [(f"W1 tiny ThreadPool.apply_async+callback countdown w{w}", f"W1 tiny ThreadPoolKit.applyAsync w{w}")
             for w in (2, 4)]
    py_w1 += [(f"W1 tiny ThreadPool.apply_async+wait w{w}", f"W1 tiny ThreadPoolKit.applyAsync+wait w{w}")
              for w in (2, 4)]
    out += ["### W1: 200,000 tiny tasks (increment one atomic), submit all and wait for all", "",
            "`x TPK` is against `ThreadPoolKit.applyAsync` with the same worker count (w2 for peers "
            "without one); `+wait` keeps every AsyncResult and waits on each, Python style.", "",
            table(HEADER, per_task_rows(e, py, w1, ref_w1, py_w1)), ""]

    # ---- W1 paired
    rows = []
    for w in (2, 4):
        name = f"W1 paired ThreadPoolKit.applyAsync/NIOThreadPool.submit w{w}"
        if name not in e:
            continue
        # (package-benchmark's text tables list the percentiles of this metric, which prefers larger
        # values, from the largest down; the stored histogram is plain.)
        lo, mid, hi = (bj.metric(e, name, PAIRED_RATIO, q) for q in (25.0, 50.0, 75.0))
        rows.append([f"`{name}`", bj.samples(e, name, PAIRED_RATIO), fmt(bj.metric(e, name, PAIRED_TPK)),
                     fmt(bj.metric(e, name, PAIRED_NIO)), fmt(mid / 100 if mid else None, 2, "x"),
                     fmt(lo / 100 if lo else None, 2, "x") + " - " + fmt(hi / 100 if hi else None, 2, "x")])
    if rows:
        out += ["### W1 paired: `applyAsync` and `NIOThreadPool.submit` one right after the other", "",
                "Each iteration runs W1 once with each (order alternating, each with a fresh pool), so that both "
                "halves of a pair see the same machine; the ratio is NIO's ns/task over ThreadPoolKit's, per pair.", "",
                table(["benchmark", "pairs", "TPK median ns/task", "NIO median ns/task", "median ratio",
                       "ratio p25 - p75"], rows), ""]

    # ---- W2
    w2 = []
    for w in (2, 4):
        w2 += [f"W2 items ThreadPoolKit.map chunk1 w{w}", f"W2 items ThreadPoolKit.imap chunk1 w{w}",
               f"W2 items ThreadPoolKit.applyAsync per item w{w}", f"W2 items CThreadPool.ctp_pool_submit per item w{w}",
               f"W2 items NIOThreadPool.submit per item w{w}", f"W2 items NIOThreadPool.runIfActive per item w{w}"]
    w2 += ["W2 items Dispatch.concurrentQueue+group per item", "W2 items Dispatch.concurrentPerform",
           "W2 items withTaskGroup per item", "W2 items inline loop"]

    def ref_w2(name):
        return f"W2 items ThreadPoolKit.map chunk1 w{bj.workers(name) or 2}"
    py_w2 = []
    for w in (2, 4):
        py_w2 += [(f"W2 items ThreadPool.map chunk1 w{w}", f"W2 items ThreadPoolKit.map chunk1 w{w}"),
                  (f"W2 items ThreadPool.imap chunk1 w{w}", f"W2 items ThreadPoolKit.map chunk1 w{w}"),
                  (f"W2 items ThreadPool.imap_unordered chunk1 w{w}", f"W2 items ThreadPoolKit.map chunk1 w{w}")]
    out += ["### W2: f(x) = x*x+1 over 100,000 items, one task per item, results in order", "",
            "`x TPK` is against `ThreadPoolKit.map(items, chunkSize: 1)` with the same worker count.", "",
            table(HEADER, per_task_rows(e, py, w2, ref_w2, py_w2)), ""]

    big = ["W2 10M ThreadPoolKit.map default chunk w2", "W2 10M ThreadPoolKit.map default chunk w4",
           "W2 10M inline loop", "W2 10M Dispatch.concurrentPerform per item", "W2 10M Dispatch.concurrentPerform chunked"]
    py_big = []
    if py:
        for name in py["by_name"]:
            if name.startswith("W2 10M") or name.startswith("W2 1M"):
                py_big.append((name, "W2 10M ThreadPoolKit.map default chunk w2" if "10M" in name else None))
    out += ["### W2: f(x) over 10,000,000 items, default chunk size (Python's: ceil(n / (4 x workers)))", "",
            "`x TPK` is against `ThreadPoolKit.map(items)` on 2 workers.", "",
            table(HEADER, per_task_rows(e, py, big, lambda n: "W2 10M ThreadPoolKit.map default chunk w2", py_big)), ""]

    # ---- W3
    rows = []
    for w in (2, 4):
        for name in (f"W3 imap ThreadPoolKit.imap chunk1 w{w}", f"W3 imap ThreadPoolKit.imapUnordered chunk1 w{w}",
                     f"W3 imap ThreadPoolKit.imap chunk64 w{w}"):
            ns = bj.ns_per_task(e, name)
            peak = bj.metric(e, name, bj.PEAK_RSS, 100.0)
            delta = bj.metric(e, name, bj.PEAK_RSS_DELTA, 100.0)
            rows.append([f"`{name}`", bj.samples(e, name, bj.WALL), fmt(bj.wall_ms(e, name), 0), fmt(1e9 / ns if ns else None),
                         fmt(peak / 2**20 if peak else None, 1), fmt(delta / 2**20 if delta is not None else None, 2),
                         fmt(bj.per_task(e, name, bj.MALLOCS), 2)])
    out += ["### W3: imap / imapUnordered over 1,000,000 items (lazy input), consumed with next()", "",
            table(["benchmark", "iterations", "median ms", "items/s", "peak RSS MiB (max)", "peak RSS growth MiB (max)",
                   "mallocs/item"], rows), ""]

    # ---- W4
    rows = []
    w4 = ["W4 latency ThreadPoolKit.applyAsync w2", "W4 latency ThreadPoolKit.execute w2",
          "W4 latency CThreadPool.ctp_pool_submit w2",
          "W4 latency NIOThreadPool.submit w2", "W4 latency Dispatch.concurrentQueue", "W4 latency Task.detached",
          "W4 latency pthread_create", "W4 latency floor pthread_cond_signal",
          "W4 latency ThreadPoolKit.applyAsync w2, submitter sleeps at once",
          "W4 latency CThreadPool.ctp_pool_submit w2, submitter sleeps at once",
          "W4 latency floor pthread_cond_signal, submitter sleeps at once"]
    ref = bj.metric(e, w4[0], bj.LATENCY, 50.0)
    for name in w4:
        if name not in e:
            continue
        p = {q: bj.metric(e, name, bj.LATENCY, q) for q in (50.0, 90.0, 99.0)}
        rows.append([f"`{name}`"] + [fmt(p[q] / 1e3 if p[q] else None, 2) for q in (50.0, 90.0, 99.0)]
                    + [ratio(p[50.0], ref), fmt(bj.per_task(e, name, bj.MALLOCS), 2), cpu_cell(e, name)])
    out += ["### W4: submit-to-start latency on an idle pool, 10,000 samples ~100 us apart", "",
            "Percentiles of the 10,000 samples (one iteration). `x TPK` compares p50s. The submitting thread "
            "waits for each task to start before it sleeps for the gap, except in the rows marked "
            "\"submitter sleeps at once\" (Latency.swift says why).", "",
            table(["benchmark", "p50 us", "p90 us", "p99 us", "x TPK (p50)", "mallocs/sample",
                   "cpu ns/sample (whole loop, gaps included)"], rows), ""]

    # ---- W5
    rows = []
    w5 = ["W5 blocking ThreadPoolKit.applyAsync w8", "W5 blocking CThreadPool.ctp_pool_submit w8",
          "W5 blocking NIOThreadPool.submit w8", "W5 blocking Dispatch.concurrentQueue+group", "W5 blocking withTaskGroup"]
    ref = bj.wall_ms(e, w5[0])
    for name in w5:
        ms = bj.wall_ms(e, name)
        cpu = bj.per_task(e, name, bj.CPU_NS)
        rows.append([f"`{name}`", fmt(ms, 1), ratio(ms, 80.0), ratio(ms, ref), fmt(bj.wall_ms(e, name, 90.0), 1),
                     fmt(cpu / 1e3 if cpu is not None else None, 1)])
    if py:
        r = py["by_name"].get("W5 blocking ThreadPool.map(sleep) w8")
        if r:
            ms = r["median_s"] * 1e3
            rows.append(["Python `ThreadPool(8).map(time.sleep, ...)`", fmt(ms, 1), ratio(ms, 80.0), ratio(ms, ref), "n/a",
                         "n/a"])
    out += ["### W5: 64 tasks x usleep(10 ms) on 8 workers (ideal: 80 ms)", "",
            table(["benchmark", "median ms", "x ideal", "x TPK", "p90 ms", "cpu us/task"], rows), ""]

    # ---- W6
    rows = []
    w6 = ["W6 lifecycle ThreadPoolKit init+close+join w2", "W6 lifecycle CThreadPool create+close+join w2",
          "W6 lifecycle NIOThreadPool start+shutdown w2", "W6 lifecycle pthread_create+join x2"]
    ref = bj.ns_per_task(e, w6[0])
    for name in w6 + ["W6 broadcast ThreadPoolKit.broadcast w2"]:
        ns = bj.ns_per_task(e, name)
        rows.append([f"`{name}`", fmt(ns / 1e3 if ns else None, 1), ratio(ns, ref) if name in w6 else "",
                     fmt(bj.per_task(e, name, bj.MALLOCS), 1), fmt(bj.per_task(e, name, bj.CTX), 1)])
    out += ["### W6: 100 pools of 2 workers with an initializer: create, close, join; and broadcast", "",
            table(["benchmark", "us per pool (per broadcast)", "x TPK", "mallocs per pool (per broadcast)",
                   "ctx switches per pool (per broadcast)"], rows), ""]

    # ---- W6 round trips
    rt_header = ["benchmark", "iterations", "median ms", "ns/round trip", "cpu ns/round trip", "x TPK apply",
                 "mallocs/round trip", "ctx switches/round trip"]
    for prefix, title in (("W6 roundtrip ", "W6: 20,000 round trips, one tiny task at a time (2 workers)"),
                          ("W6 roundtrip busy ", "W6 busy: the same with a third thread spinning on the 2 CPUs "
                                                 "(2,000 round trips; the floor 200)")):
        names = [prefix + n for n in ("ThreadPoolKit.apply w2", "ThreadPoolKit.applyAsync+get w2",
                                      "CThreadPool.ctp_pool_submit+sem_wait w2", "NIOThreadPool.submit+semaphore w2",
                                      "Dispatch.concurrentQueue+semaphore", "floor spin ping-pong")]
        if any(n in e for n in names):
            out += [f"### {title}", "",
                    "`cpu ns/round trip`: CPU time of every thread of the process (the busy thread's left out) "
                    "per round trip.", "",
                    table(rt_header, per_task_rows(e, None, names, lambda n, p=prefix: p + "ThreadPoolKit.apply w2")), ""]

    # ---- W7 offload
    w7_offload = ["W7 offload ThreadPoolKit.run w2", "W7 offload ThreadPoolKit.run(priority: .high) w2",
                  "W7 offload ThreadPoolKit.run in withTaskExecutorPreference(pool) w2",
                  "W7 offload Dispatch concurrent queue + continuation", "W7 offload inline"]
    if any(n in e for n in w7_offload):
        out += ["### W7 offload: 64 tasks x 2,000 awaits of a tiny closure (128,000 offloads, 2 workers)", "",
                "`x TPK` is against `ThreadPoolKit.run`.", "",
                table(HEADER, per_task_rows(e, None, w7_offload, lambda n: "W7 offload ThreadPoolKit.run w2")), ""]

    # ---- W8
    w8_items = [f"W8 items ThreadPoolKit.concurrentPerform chunk1 w{w}" for w in (1, 2)] + [
        "W8 items Dispatch.concurrentPerform chunk1", "W8 items ThreadPoolKit.map chunk1 w2", "W8 items inline loop"]
    w8_big = [f"W8 10M ThreadPoolKit.concurrentPerform default chunk w{w}" for w in (1, 2)] + [
        f"W8 10M ThreadPoolKit.concurrentPerform chunked {c} w{w}" for c in (8, 48) for w in (1, 2)] + [
        "W8 10M Dispatch.concurrentPerform chunked 8", "W8 10M Dispatch.concurrentPerform chunked 48",
        "W8 10M ThreadPoolKit.map default chunk w2", "W8 10M inline loop"]
    w8_header = ["benchmark", "iterations", "median ms", "ns/item", "cpu ns/item", "x Dispatch", "mallocs/item",
                 "ctx switches/item"]
    out += ["### W8: a parallel loop, f(x) = x*x+1 into a preallocated buffer", "",
            "`x Dispatch`: this row's time / Dispatch's `concurrentPerform` (per item for 100,000 items;",
            "over 48 chunks, each a loop in the closure, for 10,000,000).", "",
            table(w8_header, per_task_rows(e, None, w8_items, lambda n: "W8 items Dispatch.concurrentPerform chunk1")), "",
            table(w8_header, per_task_rows(e, None, w8_big, lambda n: "W8 10M Dispatch.concurrentPerform chunked 48")), ""]
    # ---- W7
    rows = []
    w7 = ["W7 actor calls ThreadPoolKit.WorkerExecutor w2", "W7 actor calls default actor executor"]
    ref = bj.ns_per_task(e, w7[0])
    for name in w7:
        if name not in e:
            continue
        ns = bj.ns_per_task(e, name)
        rows.append([f"`{name}`", fmt(ns, 0), ratio(ns, ref), fmt(bj.per_task(e, name, bj.MALLOCS), 2),
                     fmt(bj.per_task(e, name, bj.CTX), 3)])
    if rows:
        out += ["### W7: 64 tasks x 2,000 calls to one counter actor (128,000 calls)", "",
                table(["benchmark", "ns/call", "x TPK", "mallocs/call", "ctx switches/call"], rows), ""]

    # ---- targets
    def check(label, value, limit, unit, larger_is_better=False, digits=0):
        if value is None:
            return [label, "n/a", f"{limit}{unit}", "not measured"]
        ok = value >= limit if larger_is_better else value <= limit
        return [label, fmt(value, digits, unit), ("≥ " if larger_is_better else "≤ ") + f"{limit:,}{unit}",
                "**met**" if ok else "**not met**"]

    tiny = bj.ns_per_task(e, "W1 tiny ThreadPoolKit.applyAsync w2")
    mallocs = bj.per_task(e, "W1 tiny ThreadPoolKit.applyAsync w2", bj.MALLOCS)
    capi = bj.ns_per_task(e, "W1 tiny CThreadPool.ctp_pool_submit w2")
    map1 = bj.ns_per_task(e, "W2 items ThreadPoolKit.map chunk1 w2")
    p50 = bj.metric(e, "W4 latency ThreadPoolKit.applyAsync w2", bj.LATENCY, 50.0)
    p99 = bj.metric(e, "W4 latency ThreadPoolKit.applyAsync w2", bj.LATENCY, 99.0)
    w5ms = bj.wall_ms(e, "W5 blocking ThreadPoolKit.applyAsync w8")
    paired = bj.metric(e, "W1 paired ThreadPoolKit.applyAsync/NIOThreadPool.submit w2", PAIRED_RATIO)
    nio = bj.ns_per_task(e, "W1 tiny NIOThreadPool.submit w2")
    imap_ns = bj.ns_per_task(e, "W3 imap ThreadPoolKit.imap chunk1 w2")
    rows = [
        check("tiny tasks, `applyAsync` (W1, 2 workers)", tiny, 100, " ns/task"),
        check("tiny tasks against `NIOThreadPool.submit` (W1, 2 workers, separate benchmarks)",
              nio / tiny if nio and tiny else None, 4, "x", larger_is_better=True, digits=2),
        check("tiny tasks against `NIOThreadPool.submit` (W1 paired, 2 workers, median of pairs)",
              paired / 100 if paired else None, 4, "x", larger_is_better=True, digits=2),
        check("mallocs per `applyAsync` (W1, 2 workers)", mallocs, 2, "", digits=2),
        check("C API `ctp_pool_submit` (W1, 2 workers)", capi, 50, " ns/task"),
        check("`map(chunkSize: 1)` (W2, 2 workers)", map1, 25, " ns/item"),
        check("idle wake p50 (W4, `applyAsync`, 2 workers)", p50 / 1e3 if p50 else None, 3.5, " us", digits=2),
        check("idle wake p99 (W4, `applyAsync`, 2 workers)", p99 / 1e3 if p99 else None, 7, " us", digits=2),
        check("64 x 10 ms on 8 workers (W5)", w5ms, 82, " ms", digits=1),
        check("`imap` chunk 1 (W3, 2 workers)", 1e9 / imap_ns if imap_ns else None, 5_000_000, " items/s",
              larger_is_better=True),
    ]
    # Issue 16's targets: round trips, `run`, the parallel loop; CPU beside them.
    apply_rt = bj.ns_per_task(e, "W6 roundtrip ThreadPoolKit.apply w2")
    dispatch_rt = bj.ns_per_task(e, "W6 roundtrip Dispatch.concurrentQueue+semaphore")
    run_ns = bj.ns_per_task(e, "W7 offload ThreadPoolKit.run w2")
    continuation_ns = bj.ns_per_task(e, "W7 offload Dispatch concurrent queue + continuation")
    cp_item = bj.ns_per_task(e, "W8 items ThreadPoolKit.concurrentPerform chunk1 w2")
    dispatch_item = bj.ns_per_task(e, "W8 items Dispatch.concurrentPerform chunk1")
    cp_chunked = bj.ns_per_task(e, "W8 10M ThreadPoolKit.concurrentPerform chunked 48 w2")
    dispatch_chunked = bj.ns_per_task(e, "W8 10M Dispatch.concurrentPerform chunked 48")

    def over(a, b):
        return a / b if a and b else None
    rows += [
        check("sync round trip `apply { 1 }` (W6, 2 workers)", apply_rt / 1e3 if apply_rt else None, 2, " us", digits=2),
        check("`apply` round trip against Dispatch `async` + semaphore (W6)", over(dispatch_rt, apply_rt), 7, "x",
              larger_is_better=True, digits=2),
        check("`await run` per offload, 64 tasks x 2,000 (W7, 2 workers)", run_ns, 400, " ns"),
        check("`run` against Dispatch + `withCheckedContinuation` (W7)", over(continuation_ns, run_ns), 1, "x",
              larger_is_better=True, digits=2),
        check("`concurrentPerform` per item against Dispatch's (W8, chunk 1, 2 workers)", over(dispatch_item, cp_item), 1,
              "x", larger_is_better=True, digits=2),
        check("`concurrentPerform` chunked against Dispatch's (W8 10M, 48 chunks, 2 workers)",
              over(dispatch_chunked, cp_chunked), 1, "x", larger_is_better=True, digits=2),
    ]
    for label, name, scale, unit in (
            ("CPU per task, 64 x 10 ms on 8 workers (W5)", "W5 blocking ThreadPoolKit.applyAsync w8", 1e3, " us"),
            ("CPU per sample, idle wake (W4, `applyAsync`, 2 workers)", "W4 latency ThreadPoolKit.applyAsync w2", 1e3, " us")):
        cpu = bj.per_task(e, name, bj.CPU_NS)
        rows.append([label, fmt(cpu / scale if cpu is not None else None, 1, unit), "no higher than before issue 16",
                     "see text (A/B)"])
    out = ["### Targets (2 workers)", "", table(["target", "measured", "goal", ""], rows), ""] + out
    print("\n".join(out))


if __name__ == "__main__":
    main()
