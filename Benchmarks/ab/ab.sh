#!/usr/bin/env bash
# A/B of the library at two commits on the same workloads (main.swift), alternating runs so that
# the machine's drift falls on both sides:
#
#   bash Benchmarks/ab/ab.sh OLD [NEW] [ROUNDS] [WORKLOAD...]
#
# OLD and NEW are commits (NEW defaults to the working tree); ROUNDS defaults to 5; workloads to
# blocking, idle, wake and wake-get (see main.swift for the offload ones). Builds in release, in
# /tmp/threadpoolkit-ab, from a git worktree of each commit. Prints each run's line, prefixed A or B.
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
old=${1:?usage: ab.sh OLD [NEW] [ROUNDS] [WORKLOAD...]}
new=${2:-}
rounds=${3:-5}
shift $(($# < 3 ? $# : 3))
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(blocking idle wake wake-get)
work=/tmp/threadpoolkit-ab

tree_for() { # commit, name -> a directory with the library's sources at that commit
    local commit=$1 name=$2
    if [ -z "$commit" ]; then echo "$repo"; return; fi
    local dir=$work/tree-$name
    git -C "$repo" worktree remove --force "$dir" 2>/dev/null || rm -rf "$dir"
    git -C "$repo" worktree add --detach -q "$dir" "$commit"
    echo "$dir"
}

package_for() { # name, library directory -> a built harness
    local name=$1 library=$2
    mkdir -p "$work/$name/Sources/ab"
    cp "$repo/Benchmarks/ab/main.swift" "$work/$name/Sources/ab/main.swift"
    cat > "$work/$name/Package.swift" <<SWIFT
// swift-tools-version: 6.0
import PackageDescription
let package = Package(
    name: "ab",
    dependencies: [.package(path: "$library")],
    targets: [.executableTarget(name: "ab", dependencies: [.product(name: "ThreadPoolKit", package: "$(basename "$library")")])]
)
SWIFT
    (cd "$work/$name" && swift build -c release >/dev/null)
}

mkdir -p "$work"
for side in a b; do
    commit=$old
    [ $side = a ] || commit=$new
    tree=$(tree_for "$commit" $side)
    package_for $side "$tree"
    # The built harness no longer needs the sources.
    [ "$tree" = "$repo" ] || git -C "$repo" worktree remove --force "$tree"
done
echo "A = $old, B = ${new:-working tree}; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
for ((round = 1; round <= rounds; round++)); do
    for workload in "${workloads[@]}"; do
        echo "A $("$work/a/.build/release/ab" "$workload")"
        echo "B $("$work/b/.build/release/ab" "$workload")"
    done
done
