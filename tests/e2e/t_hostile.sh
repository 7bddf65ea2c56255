#!/usr/bin/env bash
# t_hostile: 8 threads of hostile clients (hostile.py: malformed, truncated and mutated requests,
# random bodies, chunked, pipelining, half-closes, random pacing) against a proxy whose pool holds a
# dead port and an origin that drops idle connections after 50 ms, while wrk sends valid traffic.
# The proxy must stay up, answer wrk without a single error, serve normally afterwards, and (under
# the sanitizer build) report nothing; lib.sh's exit trap checks the log and the SIGTERM exit.
set -euo pipefail
PORT_BASE=21300
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

alloc_port PA
alloc_port PB
alloc_port PDEAD
alloc_port PX
start_origin A "$PA"
start_origin B "$PB" --idle-close-ms 50
INI_CLIENT_HEADER=1s INI_IDLE=1s INI_UPSTREAM_READ=2s write_ini "$E2E_TMP/rh.ini" "$PX" "$PA $PB $PDEAD"
start_proxy "$E2E_TMP/rh.ini"
# the dead port is found down (the first probe round; at most 0.5 s, as the fixed sleep was)
_dead_down() { grep -q "backend 127\.0\.0\.1:$PDEAD down" "$PROXY_LOG"; }
wait_until 0.5 _dead_down || true

wrk -t1 -c8 -d6s "http://127.0.0.1:$PX/" >"$E2E_TMP/wrk.out" 2>&1 &
wrk_pid=$!
E2E_PIDS+=("$wrk_pid")
timeout 60 python3 "$E2E_DIR/hostile.py" "$PX" 25 7 || fail "hostile clients did not finish"
wait "$wrk_pid" || fail "wrk failed: $(cat "$E2E_TMP/wrk.out")"
log "$(grep -E 'requests in|Non-2xx|Socket errors' "$E2E_TMP/wrk.out")"
if grep -qE 'Non-2xx|Socket errors' "$E2E_TMP/wrk.out"; then
    fail "valid traffic saw errors next to the hostile clients: $(cat "$E2E_TMP/wrk.out")"
fi
is_alive "$PROXY_PID" || fail "the proxy died"
for i in 1 2 3 4; do
    req "http://127.0.0.1:$PX/"
    assert_status 200 "request $i after the hostile clients"
done
pass "proxy survived hostile clients, wrk saw no errors: $(grep 'requests in' "$E2E_TMP/wrk.out" | xargs)"
