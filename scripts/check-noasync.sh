#!/usr/bin/env bash
# Every API that blocks its thread is flagged in async code: type-checks
# Tests/NoAsync/BlockingCallsFromAsync.swift against the debug build of ThreadPoolKit and checks that
# each marked line draws the compiler's diagnostic (noasync, or the async overload's missing await).
# Run by `make test` after the Swift build.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
bin=$($SWIFT build --show-bin-path)
snippet=Tests/NoAsync/BlockingCallsFromAsync.swift
diagnostics=$(swiftc -typecheck -swift-version 6 -I "$bin/Modules" \
  -Xcc -fmodule-map-file=Sources/CThreadPool/include/module.modulemap -Xcc -ISources/CThreadPool/include \
  "$snippet" 2>&1 || true)
failed=0
while IFS=: read -r line api; do
  if grep -qE "BlockingCallsFromAsync.swift:$line:.*(unavailable from asynchronous contexts|is 'async' but is not marked with 'await')" <<<"$diagnostics"; then
    echo "ok   noasync: $api (line $line)"
  else
    echo "FAIL noasync: $api (line $line) drew no diagnostic"; failed=1
  fi
done < <(grep -nE '// expect: [A-Za-z]+$' "$snippet" | sed -E 's|^([0-9]+):.*// expect: (.*)$|\1:\2|')
if [ "$failed" -ne 0 ]; then echo "$diagnostics"; exit 1; fi

# Top-level code that awaits the pool must compile (no error) as a program's main.swift.
toplevel=Tests/NoAsync/TopLevel/main.swift
if errors=$(swiftc -typecheck -swift-version 6 -I "$bin/Modules" \
    -Xcc -fmodule-map-file=Sources/CThreadPool/include/module.modulemap -Xcc -ISources/CThreadPool/include \
    "$toplevel" 2>&1 | grep "error:"); then
  echo "FAIL top-level code awaiting the pool does not compile:"; echo "$errors"; exit 1
fi
echo "ok   top-level code in main.swift awaits the pool"
