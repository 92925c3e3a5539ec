"""Reading the suite's results: package-benchmark's stored run (JSON) and bench_pool.py's JSON.

The Swift numbers come from the run package-benchmark stores with `baseline update NAME`:
`.benchmarkBaselines/ThreadPoolBenchmarks/NAME/results.json` (`make bench` copies it to
`results/NAME.json`). It holds, for every benchmark and metric, the full HdrHistogram of the values
recorded (one per iteration; W4's latency metric: one per sample). Percentiles are computed here
exactly as package-benchmark computes them (hdrhistogram-swift's valueAtPercentile), so the
numbers match its text tables.

Raw units: wall clock and CPU time in nanoseconds, counts as is, peak memory in bytes.

(Why not the JMH export: in package-benchmark 1.38.1 it drops every benchmark whose iterations take
more than ~1.5 s, because its throughput metric, iterations per second, rounds to 0; and it carries a
metric over from one benchmark to the next benchmark that lacks it.)
"""

import json
import math
import re


class Histogram:
    """A decoded hdrhistogram-swift `Histogram` (its Codable form)."""

    def __init__(self, data):
        self.counts = data["counts"]
        self.total = data["_totalCount"]
        self.max_value = data["maxValue"]
        self.min_non_zero = data["minNonZeroValue"]
        self.unit_magnitude = data["unitMagnitude"]
        self.sub_bucket_half_count_magnitude = data["subBucketHalfCountMagnitude"]
        self.sub_bucket_half_count = 1 << self.sub_bucket_half_count_magnitude
        self.sub_bucket_count = 1 << (self.sub_bucket_half_count_magnitude + 1)
        self.sub_bucket_mask = data["subBucketMask"]
        self.leading_zero_count_base = data["leadingZeroCountBase"]

    @property
    def minimum(self):
        return 0 if (self.counts and self.counts[0] > 0) or self.total == 0 else self.min_non_zero

    def _bucket_index(self, value):
        v = value | self.sub_bucket_mask
        leading_zeros = 64 - v.bit_length()
        return self.leading_zero_count_base - leading_zeros

    def _value_from_index(self, index):
        bucket = (index >> self.sub_bucket_half_count_magnitude) - 1
        sub_bucket = (index & (self.sub_bucket_half_count - 1)) + self.sub_bucket_half_count
        if bucket < 0:
            sub_bucket -= self.sub_bucket_half_count
            bucket = 0
        return sub_bucket << (bucket + self.unit_magnitude)

    def _highest_equivalent(self, value):
        bucket = self._bucket_index(value)
        sub_bucket = value >> (bucket + self.unit_magnitude)
        lowest = sub_bucket << (bucket + self.unit_magnitude)
        adjusted = bucket + 1 if sub_bucket >= self.sub_bucket_count else bucket
        return lowest + (1 << (self.unit_magnitude + adjusted)) - 1

    def percentile(self, p):
        """hdrhistogram-swift's valueAtPercentile(p), p in 0...100."""
        if p == 0.0:
            return self.minimum
        if p >= 100.0:
            return self.max_value
        requested = min(max(math.nextafter(p, -math.inf), 0.0), 100.0)
        count_at = max(1, math.ceil(requested * self.total / 100.0))
        running = 0
        for index, count in enumerate(self.counts):
            running += count
            if running >= count_at:
                value = self._highest_equivalent(self._value_from_index(index))
                return max(min(value, self.max_value), self.minimum)
        return 0


def _metric_name(metric):
    """'wallClock', 'mallocCountTotal', ... or the name of a custom metric."""
    (kind, payload), = metric.items()
    return payload["_0"] if kind == "custom" else kind


def load_run(path):
    """{benchmark name: {metric name: Histogram}} from a stored run (results.json)."""
    with open(path) as f:
        data = json.load(f)
    results = data["results"]
    run = {}
    for identifier, metrics in zip(results[0::2], results[1::2]):
        run[identifier["name"]] = {_metric_name(m["metric"]): Histogram(m["statistics"]["histogram"]) for m in metrics}
    run_info = {"machine": data.get("machine"), "baseline": data.get("baselineName")}
    return run, run_info


# Metric names as stored.
WALL = "wallClock"
CPU = "cpuTotal"
MALLOCS = "mallocCountTotal"
PEAK_RSS = "peakMemoryResident"
PEAK_RSS_DELTA = "peakMemoryResidentDelta"
TASKS = "tasks"
CTX = "ctxSwitches"
LATENCY = "submitToStart ns"
CPU_NS = "cpu ns"  # CPU of every thread in the measured region (per iteration)


def metric(run, name, metric_name, percentile=50.0):
    """A percentile of a metric of a benchmark (raw units), or None."""
    histogram = run.get(name, {}).get(metric_name)
    if histogram is None or histogram.total == 0:
        return None
    return histogram.percentile(percentile)


def samples(run, name, metric_name):
    histogram = run.get(name, {}).get(metric_name)
    return None if histogram is None else histogram.total


def tasks(run, name):
    return metric(run, name, TASKS)


def wall_ms(run, name, percentile=50.0):
    ns = metric(run, name, WALL, percentile)
    return None if ns is None else ns / 1e6


def ns_per_task(run, name):
    """Median wall clock of an iteration divided by the tasks it ran."""
    ns, n = metric(run, name, WALL), tasks(run, name)
    return None if ns is None or not n else ns / n


def per_task(run, name, metric_name):
    """Median of a count metric per iteration divided by the tasks it ran."""
    value, n = metric(run, name, metric_name), tasks(run, name)
    return None if value is None or not n else value / n


def workers(name):
    m = re.search(r" w(\d+)$", name)
    return int(m.group(1)) if m else None


def load_python(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    data["by_name"] = {r["name"]: r for r in data["results"]}
    return data
