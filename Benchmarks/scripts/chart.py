#!/usr/bin/env python3
"""A PNG chart of a run, from package-benchmark's JMH JSON export (and bench_pool.py's JSON).

    python3 scripts/chart.py results/full.json --python results/python.json -o results/full.png

Needs matplotlib (`pip install matplotlib`). Six panels, all medians of the same run: W1 ns per tiny
task, W2 ns per item with one task per item, W4 submit-to-start latency percentiles, W5 wall clock
of 64 x 10 ms on 8 workers against the ideal 80 ms, W6 ns per sync round trip (quiet and with a busy
third thread) and W7 ns per `await` offload, each with its CPU time per task hatched beside it.
ThreadPoolKit's bars are the dark ones.
"""

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchjson as bj  # noqa: E402

TPK = "#1f3a93"
C_API = "#4a7bd0"
PEER = "#b8b8b8"
PYTHON = "#e6a23c"


def color(label):
    if label.startswith("Python"):
        return PYTHON
    if "ThreadPoolKit" in label:
        return TPK
    if "CThreadPool" in label:
        return C_API
    return PEER


def short(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


def bars(ax, items, title, xlabel, log=True, reference=None, reference_label=None):
    items = [(label, value) for label, value in items if value is not None]
    labels = [label for label, _ in items]
    values = [value for _, value in items]
    y = range(len(items))
    ax.barh(list(y), values, color=[color(label) for label in labels])
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    for i, value in enumerate(values):
        ax.text(value, i, f" {value:,.0f}" if value >= 10 else f" {value:.1f}", va="center", fontsize=6)
    if reference is not None:
        ax.axvline(reference, color="#c0392b", linestyle="--", linewidth=1)
        if reference_label:
            ax.text(reference, len(items) - 0.4, " " + reference_label, color="#c0392b", fontsize=7)
    ax.grid(axis="x", alpha=0.3)


def wall_and_cpu(ax, e, names, title, reference=None, reference_label=None):
    """Two bars per benchmark: median wall ns per task, and median CPU ns per task (hatched)."""
    names = [(name, label) for name, label in names if bj.ns_per_task(e, name) is not None]
    height = 0.4
    for i, (name, label) in enumerate(names):
        wall = bj.ns_per_task(e, name)
        cpu = bj.per_task(e, name, bj.CPU_NS)
        ax.barh(i - height / 2, wall, height=height, color=color(label + name))
        ax.text(wall, i - height / 2, f" {wall:,.0f}", va="center", fontsize=6)
        if cpu:
            ax.barh(i + height / 2, cpu, height=height, color=color(label + name), alpha=0.45, hatch="//")
            ax.text(cpu, i + height / 2, f" cpu {cpu:,.0f}", va="center", fontsize=6)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([label for _, label in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("ns", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    if reference is not None:
        ax.axvline(reference, color="#c0392b", linestyle="--", linewidth=1)
        ax.text(reference, len(names) - 0.4, " " + reference_label, color="#c0392b", fontsize=7)
    ax.grid(axis="x", alpha=0.3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run", help="a stored run: results/NAME.json")
    parser.add_argument("--python")
    parser.add_argument("-o", "--output", default="results/chart.png")
    args = parser.parse_args()
    e, run_info = bj.load_run(args.run)
    py = bj.load_python(args.python) if args.python else None

    fig, axes = plt.subplots(3, 2, figsize=(14, 15))

    w1 = ["W1 tiny ThreadPoolKit.applyAsync w2", "W1 tiny ThreadPoolKit.applyAsync+wait w2",
          "W1 tiny ThreadPoolKit.execute w2",
          "W1 tiny CThreadPool.ctp_pool_submit w2", "W1 tiny NIOThreadPool.submit w2",
          "W1 tiny NIOThreadPool.runIfActive w2", "W1 tiny Dispatch.concurrentQueue+group",
          "W1 tiny Dispatch.concurrentPerform", "W1 tiny withTaskGroup", "W1 tiny withDiscardingTaskGroup",
          "W1 tiny pthread_create per task"]
    items = [(short(n, "W1 tiny "), bj.ns_per_task(e, n)) for n in w1]
    if py:
        for name in ("W1 tiny ThreadPool.apply_async+callback countdown w2",):
            r = py["by_name"].get(name)
            if r:
                items.append(("Python " + short(name, "W1 tiny "), r["ns_per_task"]))
    bars(axes[0][0], items, "W1: 200,000 tiny tasks, 2 workers (median ns/task, log)", "ns/task",
         reference=100, reference_label="target 100 ns")

    w2 = ["W2 items ThreadPoolKit.map chunk1 w2", "W2 items ThreadPoolKit.imap chunk1 w2",
          "W2 items ThreadPoolKit.applyAsync per item w2", "W2 items CThreadPool.ctp_pool_submit per item w2",
          "W2 items NIOThreadPool.submit per item w2", "W2 items NIOThreadPool.runIfActive per item w2",
          "W2 items Dispatch.concurrentQueue+group per item", "W2 items Dispatch.concurrentPerform",
          "W2 items withTaskGroup per item", "W2 items inline loop"]
    items = [(short(n, "W2 items "), bj.ns_per_task(e, n)) for n in w2]
    if py:
        for name in ("W2 items ThreadPool.map chunk1 w2", "W2 items ThreadPool.imap chunk1 w2"):
            r = py["by_name"].get(name)
            if r:
                items.append(("Python " + short(name, "W2 items "), r["ns_per_task"]))
    bars(axes[0][1], items, "W2: 100,000 items, one task each, 2 workers (median ns/item, log)",
         "ns/item", reference=25, reference_label="target 25 ns")

    ax = axes[1][0]
    w4 = ["W4 latency ThreadPoolKit.applyAsync w2", "W4 latency CThreadPool.ctp_pool_submit w2",
          "W4 latency NIOThreadPool.submit w2", "W4 latency Dispatch.concurrentQueue", "W4 latency Task.detached",
          "W4 latency pthread_create", "W4 latency floor pthread_cond_signal"]
    labels = [short(n, "W4 latency ") for n in w4]
    width = 0.27
    for k, (q, shade) in enumerate(((50.0, 1.0), (90.0, 0.65), (99.0, 0.35))):
        values = [(bj.metric(e, n, bj.LATENCY, q) or 0) / 1e3 for n in w4]
        ax.barh([i + (k - 1) * width for i in range(len(w4))], values, height=width,
                color=[color(label) for label in labels], alpha=shade, label=f"p{q:.0f}")
        for i, value in enumerate(values):
            ax.text(value, i + (k - 1) * width, f" {value:.1f}", va="center", fontsize=6)
    ax.set_yticks(range(len(w4)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(3.5, color="#c0392b", linestyle="--", linewidth=1)
    ax.axvline(7, color="#c0392b", linestyle=":", linewidth=1)
    ax.set_title("W4: submit-to-start on an idle pool, 10,000 samples (p50 / p90 / p99 us, log)\n"
                 "targets: p50 3.5 us (dashed), p99 7 us (dotted)", fontsize=9)
    ax.set_xlabel("us", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(axis="x", alpha=0.3)

    w5 = ["W5 blocking ThreadPoolKit.applyAsync w8", "W5 blocking CThreadPool.ctp_pool_submit w8",
          "W5 blocking NIOThreadPool.submit w8", "W5 blocking Dispatch.concurrentQueue+group",
          "W5 blocking withTaskGroup"]
    items = [(short(n, "W5 blocking "), bj.wall_ms(e, n)) for n in w5]
    if py:
        r = py["by_name"].get("W5 blocking ThreadPool.map(sleep) w8")
        if r:
            items.append(("Python ThreadPool(8).map(sleep)", r["median_s"] * 1e3))
    bars(axes[1][1], items, "W5: 64 x usleep(10 ms) on 8 workers (median ms)", "ms", log=False,
         reference=80, reference_label="ideal 80 ms")

    # W6 and W7: wall time per round trip / offload, and CPU time per task (all threads) beside it.
    rt = ["ThreadPoolKit.apply w2", "ThreadPoolKit.applyAsync+get w2", "CThreadPool.ctp_pool_submit+sem_wait w2",
          "NIOThreadPool.submit+semaphore w2", "Dispatch.concurrentQueue+semaphore", "floor spin ping-pong"]
    w6 = [(p + n, (label + n)) for p, label in (("W6 roundtrip ", ""), ("W6 roundtrip busy ", "busy: ")) for n in rt]
    wall_and_cpu(axes[2][0], e, w6, "W6: sync round trips, one tiny task at a time, 2 workers\n"
                 "(median ns per round trip, log; hatched: CPU ns; busy: a third thread spinning)",
                 reference=2000, reference_label="target 2 us")
    w7 = ["W7 offload ThreadPoolKit.run w2", "W7 offload ThreadPoolKit.run(priority: .high) w2",
          "W7 offload ThreadPoolKit.run in withTaskExecutorPreference(pool) w2",
          "W7 offload Dispatch concurrent queue + continuation", "W7 offload inline"]
    wall_and_cpu(axes[2][1], e, [(n, short(n, "W7 offload ")) for n in w7],
                 "W7: 64 tasks x 2,000 awaits of a tiny closure, 2 workers\n(median ns per offload, log; hatched: CPU ns)",
                 reference=400, reference_label="target 400 ns")

    fig.suptitle("ThreadPoolKit and peers, same run (dark: ThreadPoolKit, blue: its C API, orange: Python, "
                 "grey: peers)", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
