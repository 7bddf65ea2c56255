#!/usr/bin/env bash
# t_dns: backends that follow DNS ([upstream] resolve, resolver). A tiny DNS server on loopback
# (dnsserver.py) answers for web.test from a zone file the test edits. Adding an address moves
# traffic to it within resolve + one health interval, removing one takes it out, both under load
# with no failed request; a name that stops resolving keeps its last addresses (one warning); a
# name that does not resolve at start does not stop the proxy, which picks it up once it does.
set -euo pipefail
PORT_BASE=22500
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

command -v wrk >/dev/null || fail "wrk is not installed (apt-get install wrk)"
RESOLVE_MS=500 FREQ_MS=200
WINDOW_S=${E2E_DNS_WINDOW:-3} # resolve + one health interval is 0.7 s; slack for a loaded machine

alloc_port PDNS
alloc_port PO # both origins use this port, on 127.0.0.1 and on 127.0.0.2
alloc_port PX
ZONE=$E2E_TMP/zone
set_zone() { printf '%s\n' "$@" >"$ZONE.new" && mv "$ZONE.new" "$ZONE"; }
set_zone "web.test 127.0.0.1"
python3 "$E2E_DIR/dnsserver.py" --port "$PDNS" --zone "$ZONE" >"$E2E_TMP/dns.out" 2>"$E2E_TMP/dns.log" &
E2E_PIDS+=("$!")
DNS_PID=$!
_dns_ready() { grep -qx ready "$E2E_TMP/dns.out"; }
wait_until 5 _dns_ready || fail "dnsserver.py did not start"

start_origin A "$PO"                         # 127.0.0.1
"$ORIGIN_BIN" --port "$PO" --name B --host 127.0.0.2 >>"$E2E_TMP/origin-B.log" 2>&1 &
E2E_PIDS+=("$!")
_b_up() { "${CURL[@]}" -o /dev/null "http://127.0.0.2:$PO/stats"; }
wait_until 5 _b_up || fail "origin B did not listen on 127.0.0.2:$PO"

{
    echo "[server]"
    echo "listen = 127.0.0.1:$PX"
    echo "threads = 2"
    echo "[upstream]"
    echo "backend = web.test:$PO"
    echo "backend = late.test:$PO"
    echo "resolver = 127.0.0.1:$PDNS"
    echo "resolve = ${RESOLVE_MS}ms"
    echo "[health_check]"
    echo "frequency = ${FREQ_MS}ms"
    echo "timeout = 150ms"
} >"$E2E_TMP/rh.ini"

# -t reports the name that does not resolve, and still passes (the proxy would start)
tout=$("$RH_BIN" -t -c "$E2E_TMP/rh.ini" 2>&1) || fail "roundhouse -t failed with an unresolvable name and resolve set: $tout"
assert_contains "$tout" "late.test" "-t names the backend that does not resolve"
pass "-t: ${tout//$'\n'/ | }"

start_proxy "$E2E_TMP/rh.ini"
grep -q "late.test" "$PROXY_LOG" || fail "no warning about late.test at start"

# only_to NAME N: N requests, all 200 from NAME
only_to() {
    local i
    for ((i = 0; i < $2; i++)); do
        req "http://127.0.0.1:$PX/"
        [[ $STATUS == 200 && $BACKEND == "$1" ]] || return 1
    done
}
# both N: N requests reach both origins
both() {
    local a=0 b=0 i
    for ((i = 0; i < $1; i++)); do
        req "http://127.0.0.1:$PX/"
        [[ $STATUS == 200 ]] || return 1
        case $BACKEND in A) a=1 ;; B) b=1 ;; esac
    done
    ((a && b))
}
only_to A 6 || fail "with web.test -> 127.0.0.1, requests did not all go to A"
pass "web.test resolves to 127.0.0.1 only: all to A"

# ---- under load: add 127.0.0.2, then remove 127.0.0.1; no request may fail
timeout 30 wrk -t2 -c16 -d4s --timeout 5s "http://127.0.0.1:$PX/" >"$E2E_TMP/wrk.out" 2>&1 &
WRK_PID=$!
E2E_PIDS+=("$WRK_PID")
sleep 0.5
set_zone "web.test 127.0.0.1" "web.test 127.0.0.2"
t0=$(now_ms)
_b_busy() { [[ $(origin_stat_at 127.0.0.2) -gt 0 ]]; }
origin_stat_at() { "${CURL[@]}" "http://$1:$PO/stats" | sed -n 's/.*requests=\([0-9]*\).*/\1/p'; }
wait_until "$WINDOW_S" _b_busy || fail "127.0.0.2 was added to web.test but got no request in ${WINDOW_S}s"
t_add=$(($(now_ms) - t0))
sleep 1
set_zone "web.test 127.0.0.2"
t0=$(now_ms)
a_before=$(origin_stat_at 127.0.0.1)
_a_idle() {
    local n1 n2
    n1=$(origin_stat_at 127.0.0.1)
    sleep 0.3
    n2=$(origin_stat_at 127.0.0.1)
    [[ $n1 == "$n2" ]]
}
wait_until "$WINDOW_S" _a_idle || fail "127.0.0.1 was removed from web.test but still gets requests after ${WINDOW_S}s"
t_remove=$(($(now_ms) - t0 - 300))
wait_exit "$WRK_PID" 30 || fail "wrk did not finish"
wout=$(cat "$E2E_TMP/wrk.out")
sed 's/^/# /' <<<"$wout"
total=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$wout")
assert_match "$total" '^[0-9]+$' "wrk request count"
assert_not_contains "$wout" "Socket errors" "requests failed while the addresses changed"
assert_not_contains "$wout" "Non-2xx" "requests failed while the addresses changed"
pass "under load ($total requests, none failed): an added address got traffic after ${t_add} ms, a removed one stopped after ~${t_remove} ms (A had served $a_before)"
only_to B 6 || fail "after web.test -> 127.0.0.2 only, requests did not all go to B"
grep -q "web.test:$PO: 2 addresses now (was 1)" "$PROXY_LOG" || fail "no log line for the added address"
grep -q "127.0.0.1:$PO (web.test:$PO) removed" "$PROXY_LOG" || fail "no log line for the removed address"

# ---- the name stops resolving: its last address stays, one warning
set_zone "other.test 127.0.0.9"
sleep 1.5
only_to B 6 || fail "web.test stopped resolving and its last address was dropped"
n=$(log_count "$PROXY_LOG" "web.test:$PO: no such name; keeping its last addresses")
assert_eq "$n" 1 "warnings for a name that stopped resolving (once until it resolves again)"
pass "web.test no longer resolves: 127.0.0.2 kept, warned once"

# ---- the name that did not resolve at start appears
set_zone "web.test 127.0.0.2" "late.test 127.0.0.1"
t0=$(now_ms)
wait_until 8 both 6 || fail "late.test resolves now but 127.0.0.1 gets no traffic"
pass "late.test (unresolvable at start) picked up $(($(now_ms) - t0)) ms after it resolved"
grep -q "late.test:$PO resolves again" "$PROXY_LOG" || fail "no log line for late.test resolving"
