#!/bin/bash
# Instructions per request of a server under callgrind: repeatable on a noisy machine, where
# req/s are not. Used for the before/after figures in docs/benchmarks.md.
#
#   bench/callgrind.sh <server binary> <ping|hello|list|create> [requests] [out prefix]
#
# Starts the binary under valgrind on a free-ish port (KLUE_LOG_FORMAT=json, stdout to
# <out>.log, as the bench runs klue), waits for /ping, sends 200 warm-up requests, zeroes the
# counters, sends <requests> (default 2000) on one keep-alive connection with curl, dumps, and
# prints the user-space instructions of the whole process (every thread, the log writer's
# included) divided by the number of requests. `list` first POSTs 100 items; `create` POSTs
# {"name":"widget","count":3,"tags":["a","b"]} with a JWT. Needs valgrind and curl; the JWT
# comes from `cargo xtask token` (development secret), unless KLUE_BENCH_TOKEN is set.
# Inspect with: callgrind_annotate --inclusive=yes <out>.<pid>.1
set -euo pipefail
BIN=$(realpath "$1"); W=$2; N=${3:-2000}; OUT=${4:-cg-$W}
SECRET=klue-dev-secret-do-not-deploy-0123456789; AUDIENCE=klue-dev
TOKEN=${KLUE_BENCH_TOKEN:-$(cd "$(dirname "$0")/.." && cargo xtask token --sub bench 2>/dev/null | tail -1)}
PORT=$((20000 + RANDOM % 20000))
rm -f "$OUT".*
env PORT=$PORT KLUE_HOST=127.0.0.1 KLUE_JWT_SECRET=$SECRET KLUE_JWT_AUDIENCE=$AUDIENCE \
  KLUE_LOG_FORMAT=json KLUE_DRAIN_SECONDS=1 \
  valgrind --tool=callgrind --callgrind-out-file="$OUT.%p" "$BIN" --host 127.0.0.1 >"$OUT.log" 2>&1 &
VPID=$!
trap 'kill -TERM $VPID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$PORT/ping" && break; sleep 0.1; done
urls() { # n path file: a curl config with n requests on one connection
  : > "$3"
  for _ in $(seq 1 "$1"); do printf 'url = "http://127.0.0.1:%s%s"\noutput = "/dev/null"\n' "$PORT" "$2" >> "$3"; done
}
POST=(-X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN"
      -d '{"name":"widget","count":3,"tags":["a","b"]}')
case $W in
  ping) P=/ping; ARGS=();;
  hello) P=/v1/hello/bob; ARGS=();;
  list) P='/v1/items?limit=20'; ARGS=()
        urls 100 /v1/items "$OUT.pre"; curl -s -K "$OUT.pre" "${POST[@]}" > /dev/null;;
  create) P=/v1/items; ARGS=("${POST[@]}");;
  *) echo "unknown workload $W" >&2; exit 2;;
esac
urls 200 "$P" "$OUT.warm"; curl -s -K "$OUT.warm" "${ARGS[@]}" > /dev/null
sleep 0.5
callgrind_control -z $VPID > /dev/null
urls "$N" "$P" "$OUT.run"
curl -s -w '%{http_code}\n' -K "$OUT.run" "${ARGS[@]}" | sort | uniq -c
sleep 0.5
callgrind_control -d $VPID > /dev/null
sleep 0.5
kill -TERM $VPID; wait $VPID 2>/dev/null || true
trap - EXIT
TOTAL=$(grep -m1 '^summary:\|^totals:' "$OUT.$VPID.1" | awk '{print $2}')
echo "$W: $TOTAL instructions for $N requests = $((TOTAL / N)) per request ($OUT.$VPID.1)"
