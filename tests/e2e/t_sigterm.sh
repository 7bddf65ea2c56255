#!/usr/bin/env bash
# t_sigterm: graceful shutdown. On SIGTERM the proxy stops accepting, lets the in-flight
# request finish (200), closes idle keep-alive client connections, and exits 0 within 5 s;
# afterwards the port refuses connections.
set -euo pipefail
PORT_BASE=20700
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

start_pair_and_proxy # origins A on $PA and B on $PB, the proxy on $PX

req "http://127.0.0.1:$PX/"
assert_status 200 "request before shutdown"

# an idle keep-alive client connection: one request answered, then it waits for a second
# response that never comes; it must see the proxy close the connection at shutdown.
raw "$PX" --count 2 --timeout 9 'GET / HTTP/1.1\r\nHost: idle\r\n\r\n' >"$E2E_TMP/idle.out" 2>&1 &
idle_pid=$!
E2E_PIDS+=("$idle_pid")

# the in-flight request
"${CURL[@]}" -o "$E2E_TMP/slow.body" -w '%{http_code}' "http://127.0.0.1:$PX/slow?ms=1500" \
    >"$E2E_TMP/slow.code" 2>"$E2E_TMP/slow.err" &
slow_pid=$!
E2E_PIDS+=("$slow_pid")

sleep 0.3
wait_until 2 grep -q '^RESPONSE 200' "$E2E_TMP/idle.out" || fail "idle client got no first response: $(cat "$E2E_TMP/idle.out")"
is_alive "$slow_pid" || fail "slow request finished before SIGTERM: $(cat "$E2E_TMP/slow.code" "$E2E_TMP/slow.err")"
t0=$(now_ms)
kill -TERM "$PROXY_PID"

# stops accepting while the slow request is still in flight
wait_until 0.8 _not_listening "$PX" || fail "proxy still listening 0.8 s after SIGTERM"
is_alive "$slow_pid" && pass "listener closed while a request is in flight"
is_alive "$slow_pid" || log "slow request already done when the listener was checked"

wait_exit "$slow_pid" 5 || fail "in-flight request did not finish within 5 s of SIGTERM"
assert_eq "$EXIT_STATUS" 0 "curl exit status of the in-flight request ($(cat "$E2E_TMP/slow.err"))"
assert_eq "$(cat "$E2E_TMP/slow.code")" 200 "in-flight request status"
assert_eq "$(cat "$E2E_TMP/slow.body")" "slow" "in-flight request body"
pass "in-flight request completed with 200 after SIGTERM"

wait_exit "$PROXY_PID" 5 || fail "proxy did not exit within 5 s of SIGTERM"
ms=$(($(now_ms) - t0))
assert_eq "$EXIT_STATUS" 0 "proxy exit status after SIGTERM"
pass "proxy exited 0, ${ms} ms after SIGTERM"

wait_exit "$idle_pid" 3 || fail "idle keep-alive client connection not closed at shutdown"
assert_match "$(cat "$E2E_TMP/idle.out")" 'END (closed|reset) responses=1' "idle client connection closed by the proxy"
pass "idle keep-alive client connection closed at shutdown"

connect_refused "$PX" || fail "port $PX still accepts connections after the proxy exited"
pass "port refuses connections after exit"
