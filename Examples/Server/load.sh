#!/usr/bin/env bash
# Loads orders-server with wrk on loopback, one pool variant after the other, and prints requests/s
# and latency p50/p99 per variant (medians over the rounds, with their spread). Each round runs every
# variant back to back, the order rotated from round to round. For each run: start the release
# server, wait for its "listening on" line, check some answers against the sqlite3 shell, run wrk,
# send SIGTERM, and require exit status 0 and no non-2xx answer.
#
#   ./load.sh                         the README's figures: 3 rounds of 10 s, 64 connections
#   ./load.sh --quick                 1 round of 3 s, 16 connections (make examples)
#   DURATION=30 ROUNDS=5 ./load.sh    any of the settings below
#
# Needs wrk, curl and sqlite3 (Debian: apt-get install wrk curl sqlite3).
set -euo pipefail
cd "$(dirname "$0")"

DURATION=${DURATION:-10}          # seconds of wrk per run
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-2}
ROUNDS=${ROUNDS:-3}
VARIANTS=${VARIANTS:-"threadpoolkit threadpoolkit-applyasync nio-per-request nio-thread-local"}
SERVER_THREADS=${SERVER_THREADS:-}  # the pool's threads; empty: the server's default (the usable CPUs)
PORT=${PORT:-8089}
WORK=${WORK:-${TMPDIR:-/tmp}/orders-server-load}
DATABASE=${DATABASE:-$WORK/orders.sqlite}   # made on the first run: 100000 orders, 1000 customers
SKIP_BUILD=${SKIP_BUILD:-}
SWIFT=${SWIFT:-swift}

for argument in "$@"; do
  case $argument in
    --quick) DURATION=3; ROUNDS=1; CONNECTIONS=16 ;;
    --skip-build) SKIP_BUILD=1 ;;
    *) echo "usage: $0 [--quick] [--skip-build]   (settings: see the top of $0)" >&2; exit 2 ;;
  esac
done
for tool in wrk curl sqlite3; do
  command -v $tool >/dev/null || { echo "load.sh needs $tool (Debian: apt-get install $tool)" >&2; exit 1; }
done

mkdir -p "$WORK"
if [ -z "$SKIP_BUILD" ]; then "$SWIFT" build -c release --product orders-server; fi
SERVER=$("$SWIFT" build -c release --show-bin-path)/orders-server
RESULTS=$WORK/results.tsv
: > "$RESULTS"
server_pid=
trap '[ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null; true' EXIT

fail() { echo "load.sh: $*" >&2; exit 1; }

# Starts a variant and waits (up to 60 s: the first start creates the database) for its port.
start_server() {
  local log=$WORK/server-$1.log
  : > "$log"  # empty before the server starts, so that an earlier run's "listening on" does not count
  "$SERVER" --pool "$1" --database "$DATABASE" --port "$PORT" ${SERVER_THREADS:+--threads $SERVER_THREADS} > "$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 600); do
    grep -q "^listening on " "$log" && return 0
    kill -0 "$server_pid" 2>/dev/null || fail "$1 exited at start: $(cat "$log")"
    sleep 0.1
  done
  fail "$1 did not start listening in 60 s: $(cat "$log")"
}

# SIGTERM, then exit status 0 within 30 s.
stop_server() {
  kill -TERM "$server_pid"
  local status=0
  wait "$server_pid" || status=$?
  server_pid=
  [ "$status" -eq 0 ] || fail "$1 exited with status $status after SIGTERM: $(tail -5 "$WORK/server-$1.log")"
}

# Some answers against the sqlite3 shell: the ids at both ends and a few between, compared as their
# digits (the JSON's numbers in order).
check_answers() {
  local orders customers id got want
  orders=$(sqlite3 "$DATABASE" "SELECT MAX(id) FROM orders")
  customers=$(sqlite3 "$DATABASE" "SELECT MAX(customer) FROM orders")
  for id in 1 2 $((orders / 3)) $((orders / 2 + 7)) $((orders - 1)) "$orders"; do
    got=$(curl -sf "http://127.0.0.1:$PORT/orders/$id" | tr -c '0-9' ' ' | xargs) || fail "$1: GET /orders/$id failed"
    want=$(sqlite3 -separator ' ' "$DATABASE" "SELECT id, customer, amount, day FROM orders WHERE id = $id")
    [ "$got" = "$want" ] || fail "$1: /orders/$id answered \"$got\", the database says \"$want\""
  done
  for id in 1 $((customers / 2)) "$customers"; do
    got=$(curl -sf "http://127.0.0.1:$PORT/customers/$id/total" | tr -c '0-9' ' ' | xargs) ||
      fail "$1: GET /customers/$id/total failed"
    want=$(sqlite3 -separator ' ' "$DATABASE" "SELECT $id, COUNT(*), SUM(amount) FROM orders WHERE customer = $id")
    [ "$got" = "$want" ] || fail "$1: /customers/$id/total answered \"$got\", the database says \"$want\""
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/orders/$((orders + 1))")" = 404 ] ||
    fail "$1: /orders/$((orders + 1)) is not a 404"
}

# wrk's latency in milliseconds ("850.00us", "3.37ms", "1.02s").
to_ms() {
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/) n *= 1000; printf "%.2f", n }'
}

run_variant() {
  local variant=$1 round=$2 out=$WORK/wrk-$1-$2.txt
  start_server "$variant"
  check_answers "$variant"
  local orders customers
  orders=$(sqlite3 "$DATABASE" "SELECT MAX(id) FROM orders")
  customers=$(sqlite3 "$DATABASE" "SELECT MAX(customer) FROM orders")
  echo "== round $round, $variant (load average $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo ?))"
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s load.lua \
    "http://127.0.0.1:$PORT" -- "$orders" "$customers" > "$out"
  stop_server "$variant"
  local rps p50 p99 non2xx errors
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$out"); non2xx=${non2xx:-0}
  errors=$(awk '/Socket errors/ { gsub(",", ""); print "connect " $4 ", read " $6 ", write " $8 ", timeout " $10 }' "$out")
  echo "   $rps requests/s, p50 $p50 ms, p99 $p99 ms${errors:+; socket errors: $errors}"
  [ "$non2xx" -eq 0 ] || fail "$variant: $non2xx answers were not 2xx ($out)"
  [ -n "$rps" ] || fail "$variant: no figures from wrk ($out)"
  printf '%s\t%s\t%s\t%s\t%s\n' "$variant" "$round" "$rps" "$p50" "$p99" >> "$RESULTS"
}

read -r -a variants <<< "$VARIANTS"
echo "load.sh: $ROUNDS round(s) of ${DURATION} s, $CONNECTIONS connections, $WRK_THREADS wrk threads; $(nproc) CPUs"
for ((round = 1; round <= ROUNDS; round++)); do
  count=${#variants[@]}
  for ((i = 0; i < count; i++)); do
    run_variant "${variants[$(((i + round - 1) % count))]}" "$round"
  done
done

# Medians over the rounds: requests/s with its spread ((max - min) / median), latencies, and the
# requests/s as a ratio to each NIO variant of the same round (the machine's noise moves a round's
# variants together more than it moves rounds apart).
echo
awk -F'\t' -v order="$VARIANTS" '
  function median(a, n,   i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { rps[$1, $2] = $3; p50[$1, $2] = $4; p99[$1, $2] = $5; if ($2 > rounds) rounds = $2 }
  END {
    count = split(order, names, " ")
    peers = 0
    for (k = 1; k <= count; k++) if (names[k] ~ /^nio-/) peer[++peers] = names[k]
    printf "| variant | requests/s | spread | p50 ms | p99 ms |"
    for (q = 1; q <= peers; q++) printf " × %s |", peer[q]
    printf "\n|---|---:|---:|---:|---:|"
    for (q = 1; q <= peers; q++) printf "---:|"
    printf "\n"
    for (k = 1; k <= count; k++) {
      v = names[k]; n = 0; lo = hi = ""
      for (r = 1; r <= rounds; r++) if ((v, r) in rps) {
        n++; a[n] = rps[v, r]; b[n] = p50[v, r]; c[n] = p99[v, r]
        if (lo == "" || a[n] < lo) lo = a[n]; if (hi == "" || a[n] > hi) hi = a[n]
      }
      if (n == 0) continue
      m = median(a, n)
      printf "| %s | %.0f | %.0f%% | %.2f | %.2f |", v, m, m ? 100 * (hi - lo) / m : 0, median(b, n), median(c, n)
      for (q = 1; q <= peers; q++) {
        z = 0
        for (r = 1; r <= rounds; r++) if ((v, r) in rps && (peer[q], r) in rps && rps[peer[q], r] > 0) d[++z] = rps[v, r] / rps[peer[q], r]
        if (z) printf " %.2f |", median(d, z); else printf " |"
      }
      printf "\n"
    }
  }' "$RESULTS"
echo
echo "(every run: $RESULTS; wrk's output: $WORK/wrk-VARIANT-ROUND.txt)"
