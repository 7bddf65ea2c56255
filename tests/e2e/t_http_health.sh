#!/usr/bin/env bash
# t_http_health: active HTTP checks ([health_check] type = http, path, expect, rise/fall).
#   A backend that accepts connections but answers 503 on /healthz leaves rotation within
#   fall x frequency (and not before fall failed checks), logged once as
#   "backend ADDR down: HTTP 503 from /healthz (3 of 3)"; it comes back within rise x frequency
#   after /healthz answers 200 again. Over TLS the same check rides the upstream's TLS settings.
set -euo pipefail
PORT_BASE=22400
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

FREQ=200 RISE=2 FALL=3
SLACK=${E2E_HEALTH_SLACK_MS:-900} # a loaded machine; far less than one default 5 s interval

alloc_port PA
alloc_port PB
alloc_port PX
start_origin A "$PA"
start_origin B "$PB"
# passive checks off: only the active HTTP check decides here
INI_HC_TYPE=http INI_HC_FREQUENCY=${FREQ}ms INI_HC_TIMEOUT=150ms \
    INI_HC_EXTRA=$'path = /healthz\nexpect = 200-299\npassive = false\njitter = 0' \
    write_ini "$E2E_TMP/rh.ini" "$PX" "$PA $PB"
sed -i "s/^rise = 1/rise = $RISE/; s/^fall = 1/fall = $FALL/" "$E2E_TMP/rh.ini"
start_proxy "$E2E_TMP/rh.ini"

# seen_both: among 6 requests both A and B answer, all 200
seen_both() {
    local a=0 b=0 i
    for i in 1 2 3 4 5 6; do
        req "http://127.0.0.1:$PX/"
        [[ $STATUS == 200 ]] || return 1
        case $BACKEND in A) a=1 ;; B) b=1 ;; esac
    done
    ((a && b))
}
# only_a N: the next N requests all go to A
only_a() {
    local i
    for ((i = 0; i < $1; i++)); do
        req "http://127.0.0.1:$PX/"
        [[ $STATUS == 200 && $BACKEND == A ]] || return 1
    done
}

wait_until 5 seen_both || fail "with both /healthz at 200, requests did not reach both backends"
pass "both backends in rotation with HTTP checks passing"

# ---- B answers 503 on /healthz: out after FALL failed checks
req "http://127.0.0.1:$PB/set-health?status=503"
assert_status 200 "setting B's /healthz to 503"
t0=$(now_ms)
wait_until 5 only_a 4 || fail "B answers 503 on /healthz but still gets requests after 5 s"
dt=$(($(now_ms) - t0))
# the first failing check comes at most one interval after the change, the FALLth FALL-1 later
assert_le "$dt" $((FALL * FREQ + SLACK)) "B left rotation later than fall x frequency ($FALL x $FREQ ms) + slack"
assert_ge "$dt" $(((FALL - 1) * FREQ - 50)) "B left rotation before fall ($FALL) failed checks"
only_a 10 || fail "B came back although /healthz still answers 503"
down=$(grep -E "backend 127\\.0\\.0\\.1:$PB down" "$PROXY_LOG" || true)
assert_contains "$down" "down: HTTP 503 from /healthz ($FALL of $FALL)" "the transition is logged with its reason"
assert_eq "$(grep -c "backend 127.0.0.1:$PB down" "$PROXY_LOG")" 1 "the down transition is logged once"
pass "B out of rotation ${dt} ms after /healthz turned 503 (fall $FALL x $FREQ ms); log: ${down#*: }"

# ---- back to 200: in again after RISE passing checks
req "http://127.0.0.1:$PB/set-health?status=200"
t0=$(now_ms)
wait_until 5 seen_both || fail "B answers 200 on /healthz again but gets no requests after 5 s"
dt=$(($(now_ms) - t0))
assert_le "$dt" $((RISE * FREQ + SLACK)) "B came back later than rise x frequency ($RISE x $FREQ ms) + slack"
assert_ge "$dt" $(((RISE - 1) * FREQ - 50)) "B came back before rise ($RISE) passing checks"
grep -q "backend 127.0.0.1:$PB up" "$PROXY_LOG" || fail "no 'backend ... up' line for B"
pass "B back in rotation ${dt} ms after /healthz answered 200 (rise $RISE x $FREQ ms)"

# ---- a status outside expect fails too (302 with expect = 200-299)
req "http://127.0.0.1:$PB/set-health?status=302"
wait_until 5 only_a 4 || fail "B answers 302 (outside expect 200-299) but stays in rotation"
pass "a status outside expect takes the backend out"
req "http://127.0.0.1:$PB/set-health?status=200"
wait_until 5 seen_both || fail "B did not come back"

# ---- a backend that is not HTTP at all (answers TCP, closes at once) is down with a reason
stop_pid "$PROXY_PID" TERM 5
assert_eq "$EXIT_STATUS" 0 "the first proxy's exit status on SIGTERM"
alloc_port PDUMB
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept(); c.close()
' "$PDUMB" &
E2E_PIDS+=("$!")
wait_port "$PDUMB" 5 "$!" || fail "the closing listener did not start"
alloc_port PX2
INI_HC_TYPE=http INI_HC_FREQUENCY=${FREQ}ms INI_HC_TIMEOUT=150ms INI_HC_EXTRA=$'path = /healthz\npassive = false' \
    write_ini "$E2E_TMP/rh2.ini" "$PX2" "$PA $PDUMB"
start_proxy "$E2E_TMP/rh2.ini" proxy2
PX=$PX2
wait_until 5 only_a 4 || fail "a backend that closes every connection stays in rotation under HTTP checks"
l=$(grep -E "backend 127\\.0\\.0\\.1:$PDUMB down" "$PROXY_LOG" || true)
assert_match "$l" "down: (no response|connection closed before a response|not an HTTP response) from /healthz" "the down line says the check got no HTTP answer"
pass "a TCP-only backend fails HTTP checks: ${l#*: }"

# ---- over TLS: the check uses the upstream's TLS settings (SNI, verification)
make_certs
alloc_port PT
alloc_port PX3
start_tls_origin T "$PT" backend
INI_HC_TYPE=http INI_HC_FREQUENCY=${FREQ}ms INI_HC_TIMEOUT=500ms INI_HC_EXTRA=$'path = /healthz\npassive = false' \
    write_ini "$E2E_TMP/rh3.ini" "$PX3" "$PT" "tls = true" "sni = backend.test" "verify = true" \
    "ca_file = $CERTS/ca.pem"
start_proxy "$E2E_TMP/rh3.ini" proxy3
req "http://127.0.0.1:$PX3/"
assert_status 200 "through the TLS backend with HTTPS checks passing"
"${CURL[@]}" --insecure -o /dev/null "https://127.0.0.1:$PT/set-health?status=503"
_all_502() { req "http://127.0.0.1:$PX3/"; [[ $STATUS == 502 ]]; }
wait_until 5 _all_502 || fail "the TLS backend answers 503 on /healthz but stays in rotation"
l=$(grep -E "backend 127\\.0\\.0\\.1:$PT down" "$PROXY_LOG" || true)
assert_contains "$l" "HTTP 503 from /healthz" "the HTTPS check read the status over TLS"
pass "HTTPS check: ${l#*: }"
