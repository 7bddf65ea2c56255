#!/usr/bin/env bash
# t_service: running under systemd. etc/roundhouse.service passes `systemd-analyze verify` (with
# its binary paths pointed at this build: verify checks that they can be executed) without a single
# warning, and the proxy speaks systemd's Type=notify protocol: READY=1 on $NOTIFY_SOCKET once it
# serves, STOPPING=1 when a graceful stop begins. Without $NOTIFY_SOCKET nothing is sent.
set -euo pipefail
PORT_BASE=23200
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

command -v systemd-analyze >/dev/null || fail "systemd-analyze is not installed (apt-get install systemd)"
root=$(cd "$E2E_DIR/../.." && pwd)

# ---- the unit file
sed -e "s#/usr/bin/roundhouse#$RH_BIN#g" "$root/etc/roundhouse.service" >"$E2E_TMP/roundhouse.service"
out=$(cd "$E2E_TMP" && timeout 60 systemd-analyze verify ./roundhouse.service 2>&1) ||
    fail "systemd-analyze verify failed: $out"
[[ -z $out ]] || fail "systemd-analyze verify warned: $out"
for key in Type=notify ExecReload= DynamicUser=yes AmbientCapabilities=CAP_NET_BIND_SERVICE \
    LimitNOFILE= ProtectSystem=strict; do
    grep -q "^$key" "$root/etc/roundhouse.service" || fail "etc/roundhouse.service has no $key"
done
pass "etc/roundhouse.service passes systemd-analyze verify"

# ---- sd_notify: a datagram socket stands in for systemd
alloc_port PA
alloc_port PX
start_origin A "$PA"
write_ini "$E2E_TMP/rh.ini" "$PX" "$PA"
python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    msg = s.recv(4096).decode()
    print(msg.replace("\n", " | "), flush=True)
' "$E2E_TMP/notify.sock" >"$E2E_TMP/notify.log" 2>&1 &
E2E_PIDS+=("$!")
_bound() { grep -q bound "$E2E_TMP/notify.log"; }
wait_until 5 _bound || fail "the notify socket did not come up"

NOTIFY_SOCKET=$E2E_TMP/notify.sock start_proxy "$E2E_TMP/rh.ini"
_ready() { grep -q "READY=1" "$E2E_TMP/notify.log"; }
wait_until 5 _ready || fail "no READY=1 on \$NOTIFY_SOCKET"
ready=$(grep READY=1 "$E2E_TMP/notify.log")
assert_contains "$ready" "STATUS=serving on 127.0.0.1:$PX" "the ready message's status"
req "http://127.0.0.1:$PX/"
assert_status 200 "a request once ready"
kill -s TERM "$PROXY_PID"
wait_exit "$PROXY_PID" 10 || fail "the proxy did not stop"
assert_eq "$EXIT_STATUS" 0 "exit status"
grep -q "^STOPPING=1" "$E2E_TMP/notify.log" || fail "no STOPPING=1 on SIGTERM: $(cat "$E2E_TMP/notify.log")"
pass "Type=notify: $ready, then STOPPING=1"

# an abstract socket name ("@...") works too
python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + sys.argv[1])
print("bound", flush=True)
print(s.recv(4096).decode().replace("\n", " | "), flush=True)
' "rh-e2e-notify-$$" >"$E2E_TMP/notify2.log" 2>&1 &
E2E_PIDS+=("$!")
_bound2() { grep -q bound "$E2E_TMP/notify2.log"; }
wait_until 5 _bound2 || fail "the abstract notify socket did not come up"
alloc_port PX2
write_ini "$E2E_TMP/rh2.ini" "$PX2" "$PA"
NOTIFY_SOCKET="@rh-e2e-notify-$$" start_proxy "$E2E_TMP/rh2.ini" proxy2
_ready2() { grep -q "READY=1" "$E2E_TMP/notify2.log"; }
wait_until 5 _ready2 || fail "no READY=1 on an abstract \$NOTIFY_SOCKET"
pass "READY=1 on an abstract socket too"
