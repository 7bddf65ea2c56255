#!/usr/bin/env bash
# t_signals: the signals operators send by habit never kill the proxy at once. SIGUSR1 (logrotate's
# for nginx: reopens the access log) and SIGHUP (reload) are logged and the proxy keeps serving
# (SIGUSR2, the binary upgrade, is t_upgrade's); SIGQUIT is a graceful stop
# like SIGTERM (exit 0). Start-up logs the config file and its backends; the exit totals count every
# request, those the proxy answered itself included.
set -euo pipefail
PORT_BASE=22900
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

alloc_port PA
alloc_port PX
start_origin A "$PA"
INI_UPSTREAM_READ=300ms write_ini "$E2E_TMP/rh.ini" "$PX" "$PA"
start_proxy "$E2E_TMP/rh.ini"

grep -q "config $E2E_TMP/rh.ini: 1 backend line, 1 address" "$PROXY_LOG" || fail "no start-up line naming the config file"
grep -q "backend 127.0.0.1:$PA (line [0-9]*): 127.0.0.1:$PA weight=1" "$PROXY_LOG" || fail "no start-up line for the backend"
pass "start-up names the config file and its backends"

for sig in USR1 HUP; do
    kill -s "$sig" "$PROXY_PID"
    _logged() { grep -q "SIG$sig: " "$PROXY_LOG"; }
    wait_until 3 _logged || fail "SIG$sig was not logged"
    is_alive "$PROXY_PID" || fail "SIG$sig killed the proxy"
    req "http://127.0.0.1:$PX/"
    assert_status 200 "a request after SIG$sig"
    pass "SIG$sig: $(grep -o "SIG$sig: .*" "$PROXY_LOG" | head -n1)"
done

# 3 more answered by the backend (5 in all), 2 answered by the proxy itself (504: the backend is
# slower than upstream_read)
for i in 1 2 3; do
    req "http://127.0.0.1:$PX/"
    assert_status 200 "request $i"
done
for i in 1 2; do
    req "http://127.0.0.1:$PX/slow?ms=1000"
    assert_status 504 "slow request $i"
done

kill -s QUIT "$PROXY_PID"
wait_exit "$PROXY_PID" 10 || fail "SIGQUIT did not stop the proxy within 10 s"
assert_eq "$EXIT_STATUS" 0 "exit status after SIGQUIT (a graceful stop)"
grep -q "Quit: stopping" "$PROXY_LOG" || fail "SIGQUIT was not logged as a stop"
totals=$(grep -o 'totals: .*' "$PROXY_LOG" || true)
assert_contains "$totals" "7 requests (5 answered by a backend, 2 by the proxy, 0 cut off)" "exit totals count every request"
pass "SIGQUIT stops gracefully; $totals"

# [server] user/group: started as root, it serves as the account after binding (tests run as root
# in CI; elsewhere the switch cannot be shown)
if [[ $(id -u) == 0 ]] && id nobody >/dev/null 2>&1; then
    alloc_port PX2
    INI_SERVER_EXTRA="user = nobody
group = $(id -gn nobody)" write_ini "$E2E_TMP/rh-user.ini" "$PX2" "$PA"
    start_proxy "$E2E_TMP/rh-user.ini" proxy-user
    _switched() { grep -q "running as uid $(id -u nobody) gid $(id -g nobody)" "$PROXY_LOG"; }
    wait_until 3 _switched || fail "no 'running as uid' line"
    uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$PROXY_PID/status")
    assert_eq "$uids" "$(id -u nobody) $(id -u nobody) $(id -u nobody) $(id -u nobody)" "real, effective, saved and fs uid"
    req "http://127.0.0.1:$PX2/"
    assert_status 200 "a request to the proxy running as nobody"
    stop_pid "$PROXY_PID" TERM 10
    pass "[server] user = nobody: every uid is $(id -u nobody) after binding, and it serves"
fi
