#!/usr/bin/env bash
# t_admin: the admin listener and the access log.
#  - GET /metrics passes promtool, and its counters move by exactly what was sent: per backend (as
#    the backends themselves counted), answers of the proxy's own (backend=""), connections,
#    the duration histogram;
#  - GET /status is JSON with every backend; GET /healthz is 200, and 503 while draining;
#  - the access log has one parseable line per exchange, hostile targets escaped, the proxy's own
#    answers with why; SIGUSR1 after a rename (logrotate) loses no line while wrk runs and /metrics
#    is scraped all along (the threads suite runs this under TSan: scrapes race with no worker).
set -euo pipefail
PORT_BASE=23500
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

alloc_port PA
alloc_port PB
alloc_port PX
alloc_port PM
start_origin A "$PA"
start_origin B "$PB"
ACCESS=$E2E_TMP/access.log
INI_EXTRA="[admin]
listen = 127.0.0.1:$PM
[log]
access = $ACCESS" INI_SHUTDOWN=10s write_ini "$E2E_TMP/rh.ini" "$PX" "$PA $PB"
start_proxy "$E2E_TMP/rh.ini"
wait_port "$PM" 5 "$PROXY_PID" || fail "admin listener not up"
ADMIN=http://127.0.0.1:$PM

scrape() { "${CURL[@]}" --max-time 5 "$ADMIN/metrics" >"$1" || fail "GET /metrics failed"; }
# metric FILE 'NAME{labels}' : its value (0 when absent)
metric() { awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' "$1"; }
delta() { echo $(($(metric "$2" "$3") - $(metric "$1" "$3"))); }

# ---- counters move by exactly what was sent
scrape "$E2E_TMP/m0"
a0=$(origin_stat "$PA" requests)
b0=$(origin_stat "$PB" requests)
N=10
for i in $(seq 1 $N); do
    req "http://127.0.0.1:$PX/t?i=$i"
    assert_status 200 "request $i"
done
for i in 1 2 3; do # no Host: 400 from the proxy itself
    raw "$PX" 'GET /nohost HTTP/1.1\r\n\r\n' >/dev/null
done
sleep 0.2
scrape "$E2E_TMP/m1"
da=$(($(origin_stat "$PA" requests) - a0))
db=$(($(origin_stat "$PB" requests) - b0))
assert_eq $((da + db)) "$N" "the backends' own request counts"
assert_eq "$(delta "$E2E_TMP/m0" "$E2E_TMP/m1" "roundhouse_requests_total{backend=\"127.0.0.1:$PA\",name=\"127.0.0.1:$PA\",code=\"2xx\"}")" "$da" \
    "requests_total 2xx of backend A moved by what A counted"
assert_eq "$(delta "$E2E_TMP/m0" "$E2E_TMP/m1" "roundhouse_requests_total{backend=\"127.0.0.1:$PB\",name=\"127.0.0.1:$PB\",code=\"2xx\"}")" "$db" \
    "requests_total 2xx of backend B moved by what B counted"
assert_eq "$(delta "$E2E_TMP/m0" "$E2E_TMP/m1" 'roundhouse_requests_total{backend="",name="",code="4xx"}')" 3 \
    "the proxy's own 400s are counted with backend=\"\""
assert_eq "$(delta "$E2E_TMP/m0" "$E2E_TMP/m1" roundhouse_client_connections_accepted_total)" $((N + 3)) \
    "client connections accepted"
assert_eq "$(delta "$E2E_TMP/m0" "$E2E_TMP/m1" roundhouse_request_duration_seconds_count)" "$N" \
    "request duration histogram count (proxied requests)"
assert_eq "$(delta "$E2E_TMP/m0" "$E2E_TMP/m1" 'roundhouse_request_duration_seconds_bucket{le="+Inf"}')" "$N" \
    "the +Inf bucket holds every request"
assert_ge "$(delta "$E2E_TMP/m0" "$E2E_TMP/m1" roundhouse_client_sent_bytes_total)" $((N * 40)) "bytes sent to clients"
assert_eq "$(metric "$E2E_TMP/m1" "roundhouse_backend_state{backend=\"127.0.0.1:$PA\",name=\"127.0.0.1:$PA\",state=\"up\"}")" 1 \
    "backend A is up"
pass "/metrics moved by exactly N=$N per backend ($da to A, $db to B), 3 own 400s, $((N + 3)) connections"

if command -v promtool >/dev/null; then
    promtool check metrics <"$E2E_TMP/m1" >"$E2E_TMP/promtool.out" 2>&1 ||
        fail "promtool check metrics: $(cat "$E2E_TMP/promtool.out")"
    pass "promtool check metrics accepts /metrics ($(grep -c '^# TYPE' "$E2E_TMP/m1") metrics)"
else
    fail "promtool is not installed (scripts/setup installs prometheus)"
fi

# ---- /status, /healthz, errors
"${CURL[@]}" "$ADMIN/status" >"$E2E_TMP/status.json"
python3 - "$E2E_TMP/status.json" "$PA" "$PB" <<'EOF' || fail "/status: $(head -c 600 "$E2E_TMP/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
b = {x["address"]: x for x in s["backends"]}
for p in sys.argv[2:]:
    x = b["127.0.0.1:" + p]
    assert x["state"] == "up" and x["weight"] == 1 and x["last_check"]["ok"] is True, x
    assert x["since"] > 0 and "in_flight" in x and "idle" in x, x
assert s["config"]["generation"] == 1 and s["draining"] is False, s
EOF
pass "/status is JSON with both backends up"
req "$ADMIN/healthz"
assert_status 200 "/healthz while serving"
req "$ADMIN/nope"
assert_status 404 "unknown admin path"
req "$ADMIN/metrics" -X POST
assert_status 405 "POST /metrics"
pass "/healthz 200, 404 and 405 where due"

# ---- the access log: one line per exchange
req "http://127.0.0.1:$PX/q%22x%20y?a=%0d%0a"
assert_status 200 "a request with an escaped target"
raw "$PX" 'GET /bad"target HTTP/1.1\r\nHost: x\r\n\r\n' >/dev/null
_lines() { [[ $(grep -c '' "$ACCESS" 2>/dev/null || echo 0) -ge $((N + 5)) ]]; }
wait_until 3 _lines || fail "access log has $(grep -c '' "$ACCESS" 2>/dev/null) lines, want $((N + 5))"
python3 - "$ACCESS" "$N" "$PA" "$PB" <<'EOF' || fail "access log: $(tail -n 5 "$ACCESS")"
import re, sys
path, n, pa, pb = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
line_re = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z client=127\.0\.0\.1:\d+ method=(\S+) '
                     r'target="([^"]*)" status=(\d+|-) backend=(\S+) in=(\d+) out=(\d+) '
                     r'duration=(\d+\.\d{6}) connect=(\d+\.\d{6}|-) retries=(\d+) end=(\S+)$')
lines = open(path).read().splitlines()
rows = []
for l in lines:
    m = line_re.match(l)
    assert m, "unparsable line: %r" % l
    rows.append(m.groups())
ok = [r for r in rows if r[1].startswith("/t?i=")]
assert sorted(r[1] for r in ok) == sorted("/t?i=%d" % i for i in range(1, n + 1)), ok
for r in ok:
    assert r[0] == "GET" and r[2] == "200" and r[9] == "-", r
    assert r[3] in ("127.0.0.1:" + pa, "127.0.0.1:" + pb), r
    assert int(r[4]) > 0 and int(r[5]) > 0, r
bad = [r for r in rows if r[1] == "/nohost"]
assert len(bad) == 3 and all(r[0] == "GET" and r[2] == "400" and r[3] == "-" and r[9] == "bad_request"
                             for r in bad), bad
esc = [r for r in rows if r[1].startswith("/q")]
assert esc and esc[0][1] == "/q%22x%20y?a=%0d%0a", esc
forged = [r for r in rows if r[1].startswith("/bad")]
assert forged and forged[0][1] == "/bad\\x22target", forged
EOF
pass "access log: $N proxied lines match the requests, 3 own 400s with end=bad_request, a quote escaped"

# ---- SIGUSR1 after a rename loses no line, under wrk, with scrapes all along
: >"$ACCESS"
scraper() { while :; do "${CURL[@]}" --max-time 5 -o /dev/null "$ADMIN/metrics" || true; sleep 0.05; done; }
scraper &
SCRAPER=$!
E2E_PIDS+=("$SCRAPER")
scrape "$E2E_TMP/m2"
wrk -t2 -c8 -d3s "http://127.0.0.1:$PX/r" >"$E2E_TMP/wrk.out" 2>&1 &
WRK=$!
E2E_PIDS+=("$WRK")
sleep 1.2
mv "$ACCESS" "$ACCESS.1"
kill -USR1 "$PROXY_PID"
wait_exit "$WRK" 15 || fail "wrk did not finish"
stop_pid "$SCRAPER" TERM 2
grep -q "SIGUSR1: reopened the access log" "$PROXY_LOG" || fail "SIGUSR1 not logged as a reopen"
[[ -s $ACCESS ]] || sleep 1.5
sent=$(sed -n 's/^ *\([0-9][0-9]*\) requests in.*/\1/p' "$E2E_TMP/wrk.out")
[[ -n $sent && $sent -gt 0 ]] || fail "no wrk result: $(cat "$E2E_TMP/wrk.out")"
_logged_all() {
    [[ $(cat "$ACCESS.1" "$ACCESS" 2>/dev/null | grep -c 'target="/r" status=200 .* end=-$') -ge $sent ]]
}
wait_until 3 _logged_all || true
before=$(grep -c 'target="/r"' "$ACCESS.1" || true)
after=$(grep -c 'target="/r"' "$ACCESS" || true)
done_lines=$(cat "$ACCESS.1" "$ACCESS" | grep -c 'target="/r" status=200 .* end=-$' || true)
scrape "$E2E_TMP/m3"
answered=$(( $(delta "$E2E_TMP/m2" "$E2E_TMP/m3" "roundhouse_requests_total{backend=\"127.0.0.1:$PA\",name=\"127.0.0.1:$PA\",code=\"2xx\"}") + \
    $(delta "$E2E_TMP/m2" "$E2E_TMP/m3" "roundhouse_requests_total{backend=\"127.0.0.1:$PB\",name=\"127.0.0.1:$PB\",code=\"2xx\"}") ))
assert_ge "$before" 1 "lines in the renamed file"
assert_ge "$after" 1 "lines in the reopened file"
assert_eq "$done_lines" "$answered" "access log lines (both files) vs responses the metrics counted"
assert_ge "$done_lines" "$sent" "access log lines vs responses wrk received"
assert_eq "$(metric "$E2E_TMP/m3" 'roundhouse_access_log_lines_total{result="dropped"}')" 0 "dropped access log lines"
pass "SIGUSR1 rotation under wrk: $before + $after lines = $answered responses (wrk got $sent), none dropped"

# ---- /healthz says 503 while draining
"${CURL[@]}" -o /dev/null "http://127.0.0.1:$PX/slow?ms=1500" &
SLOW=$!
E2E_PIDS+=("$SLOW")
sleep 0.3
kill -TERM "$PROXY_PID"
sleep 0.2
req "$ADMIN/healthz"
assert_status 503 "/healthz while draining"
assert_contains "$BODY" "draining" "/healthz body while draining"
wait_exit "$PROXY_PID" 10 || fail "the proxy did not stop"
assert_eq "$EXIT_STATUS" 0 "exit status"
pass "/healthz answers 503 while the proxy drains, and it exits 0"
