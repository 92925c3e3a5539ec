#!/usr/bin/env python3
"""Renames the threshold files package-benchmark writes so that its own check can find them.

package-benchmark 1.38.1 writes `thresholds update` files as `<target>.<name>.p90.json` with spaces
and slashes in the name replaced by underscores, but `thresholds check` looks for the name as it is,
spaces included, and so finds none of them. This maps each written file back to the benchmark's real
name, taken from the stored run the thresholds were made from.

    python3 scripts/fix_threshold_names.py .benchmarkBaselines/ThreadPoolBenchmarks/thresholds/results.json Thresholds
"""

import json
import os
import sys


def main():
    run_path, directory = sys.argv[1], sys.argv[2]
    with open(run_path) as f:
        results = json.load(f)["results"]
    renamed = 0
    for identifier in results[0::2]:
        target, name = identifier["target"], identifier["name"]
        written = f"{target}.{name.replace('/', '_').replace(' ', '_')}.p90.json"
        wanted = f"{target}.{name}.p90.json"
        source = os.path.join(directory, written)
        if written != wanted and os.path.exists(source):
            os.replace(source, os.path.join(directory, wanted))
            renamed += 1
    print(f"{renamed} threshold files renamed to the benchmarks' real names")


if __name__ == "__main__":
    main()
