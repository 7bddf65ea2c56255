#!/usr/bin/env bash
# t_limits: max_connections is enforced without stalling the worker: with room for 2 clients, a
# third waits in the kernel's accept queue (not served, not refused) while the worker keeps serving
# the two it has; as soon as one of them leaves, the third is accepted and answered.
set -euo pipefail
PORT_BASE=21000
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

alloc_port PA
alloc_port PX
start_origin A "$PA"
INI_THREADS=1 INI_MAX_CONNECTIONS=2 write_ini "$E2E_TMP/rh.ini" "$PX" "$PA"
start_proxy "$E2E_TMP/rh.ini"

python3 - "$PX" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
REQ = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"

def ask(s, timeout):
    """Send one request on <s>; return the status line, or None if nothing came in time."""
    s.settimeout(timeout)
    s.sendall(REQ)
    data = b""
    deadline = time.time() + timeout
    while b"\r\n\r\n" not in data or not data.endswith(b"A\n"):
        left = deadline - time.time()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            return None
        if not chunk:
            return None
        data += chunk
    return data.split(b"\r\n", 1)[0].decode()

a = socket.create_connection(("127.0.0.1", port))
b = socket.create_connection(("127.0.0.1", port))
assert ask(a, 2) == "HTTP/1.1 200 OK", "first client served"
assert ask(b, 2) == "HTTP/1.1 200 OK", "second client served"

c = socket.create_connection(("127.0.0.1", port))  # the kernel completes the handshake
c.settimeout(1)
c.sendall(REQ)
try:
    got = c.recv(4096)
except socket.timeout:
    got = None
assert got is None, "third client must wait while 2 connections are open, got %r" % got

# the worker is not stuck: the two it holds keep being served
for i in range(5):
    assert ask(a, 2) == "HTTP/1.1 200 OK", "held client still served while at the limit"

a.close()
# the third connection is accepted once a slot frees and its queued request answered
c.settimeout(3)
data = b""
t0 = time.time()
while b"\r\n\r\n" not in data:
    chunk = c.recv(4096)
    assert chunk, "third client closed instead of served"
    data += chunk
assert data.startswith(b"HTTP/1.1 200 OK"), data[:60]
print("ok - third client served %.0f ms after a slot freed" % ((time.time() - t0) * 1000))
b.close()
c.close()
PY
pass "max_connections = 2 holds the third client until a slot frees"
