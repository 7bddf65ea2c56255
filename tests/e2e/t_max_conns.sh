#!/usr/bin/env bash
# t_max_conns: "backend = host:port max_conns=N" and [upstream] queue_timeout. 20 concurrent slow
# requests to a backend with max_conns=2 never put more than 2 at the backend at once; the rest
# wait in the workers' queues, and those still waiting after queue_timeout get a 503 saying why.
# With a long enough queue_timeout all of them succeed; with a second backend without a limit,
# the overflow goes there instead of waiting.
set -euo pipefail
PORT_BASE=22700
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

N=20 SLOW_MS=300

alloc_port PA
alloc_port PB
start_origin A "$PA"
start_origin B "$PB"

# fire N PORT: N concurrent GET /slow?ms=SLOW_MS through the proxy on PORT; one line per request
# in $E2E_TMP/fire.out: "STATUS SECONDS BACKEND"
fire() {
    local n=$1 port=$2 i
    : >"$E2E_TMP/fire.out"
    local pids=()
    for ((i = 0; i < n; i++)); do
        curl -sS --noproxy '*' --max-time 20 -o "$E2E_TMP/body.$i" -D "$E2E_TMP/hdr.$i" \
            -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$port/slow?ms=$SLOW_MS" \
            >"$E2E_TMP/out.$i" 2>/dev/null &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    for ((i = 0; i < n; i++)); do
        printf '%s %s\n' "$(cat "$E2E_TMP/out.$i")" "$(header_value "$E2E_TMP/hdr.$i" X-Backend)" >>"$E2E_TMP/fire.out"
    done
}
count_status() { awk -v s="$1" '$1 == s' "$E2E_TMP/fire.out" | wc -l; }

# ---- max_conns=2, queue_timeout 1s: 20 x 300 ms need 3 s at 2 at a time, so some get 503
alloc_port PX
write_ini "$E2E_TMP/rh.ini" "$PX" "" "backend = 127.0.0.1:$PA max_conns=2" "queue_timeout = 1s"
start_proxy "$E2E_TMP/rh.ini"
fire "$N" "$PX"
ok=$(count_status 200)
full=$(count_status 503)
peak=$(origin_stat "$PA" concurrent_max)
log "max_conns=2, queue_timeout=1s: $ok x 200, $full x 503, peak concurrency at the backend $peak"
assert_le "$peak" 2 "requests at the backend at once with max_conns=2"
assert_eq "$((ok + full))" "$N" "every request answered 200 or 503"
assert_ge "$ok" 4 "requests served within queue_timeout (2 slots x 300 ms over 1 s)"
assert_ge "$full" 1 "requests that waited out queue_timeout"
for ((i = 0; i < N; i++)); do
    if grep -q '^503 ' "$E2E_TMP/out.$i"; then
        assert_contains "$(cat "$E2E_TMP/body.$i")" "max_conns" "the 503 body says why"
        t=$(awk '{ print int($2 * 1000) }' "$E2E_TMP/out.$i")
        assert_ge "$t" 900 "a 503 came only after queue_timeout (1 s)"
        break
    fi
done
stop_pid "$PROXY_PID" TERM 8
assert_eq "$EXIT_STATUS" 0 "proxy exit status"
grep -q "max_conns queue: [0-9]* requests waited, $full got 503" "$PROXY_LOG" ||
    fail "the totals at exit do not count $full queue timeouts: $(grep 'max_conns queue' "$PROXY_LOG")"
pass "max_conns=2: never more than $peak at the backend; $ok served, $full got 503 after queue_timeout"

# ---- the same with queue_timeout 10s: all served, 2 at a time
alloc_port PX2
stop_origin A
start_origin A "$PA" # fresh counters
write_ini "$E2E_TMP/rh2.ini" "$PX2" "" "backend = 127.0.0.1:$PA max_conns=2" "queue_timeout = 10s"
start_proxy "$E2E_TMP/rh2.ini" proxy2
t0=$(now_ms)
fire "$N" "$PX2"
dt=$(($(now_ms) - t0))
peak=$(origin_stat "$PA" concurrent_max)
assert_eq "$(count_status 200)" "$N" "all requests served with a long queue_timeout"
assert_le "$peak" 2 "requests at the backend at once"
assert_ge "$dt" $((N / 2 * SLOW_MS - 200)) "20 requests 2 at a time take 10 x 300 ms"
pass "queue_timeout=10s: all $N served in $dt ms, never more than $peak at once"

# ---- a second backend without a limit takes the overflow: nobody waits, nobody gets 503
alloc_port PX3
stop_origin A
start_origin A "$PA"
write_ini "$E2E_TMP/rh3.ini" "$PX3" "" "backend = 127.0.0.1:$PA max_conns=1" "backend = 127.0.0.1:$PB"
start_proxy "$E2E_TMP/rh3.ini" proxy3
fire "$N" "$PX3"
assert_eq "$(count_status 200)" "$N" "all requests served with a backend without a limit beside"
peak=$(origin_stat "$PA" concurrent_max)
assert_le "$peak" 1 "requests at the max_conns=1 backend at once"
nb=$(awk '$3 == "B"' "$E2E_TMP/fire.out" | wc -l)
assert_ge "$nb" $((N / 2)) "requests that went to the backend without a limit"
pass "max_conns=1 beside an unlimited backend: $nb of $N went to B, A never had more than $peak"
