#!/usr/bin/env bash
# t_close: how connections end. A response must arrive whole even when the proxy closes a client
# connection the client is still writing to (a reset there destroys the response's tail):
#   - the backend answers 3 MB before reading a 20 MB upload (the request cannot finish);
#   - a close-delimited 3 MB response to a keep-alive HTTP/1.0 client that pipelines behind it.
# And a request with a body whose connect fails is retried on the next backend, like a GET; and a
# client that never reads its response is closed after `idle` even while it trickles its upload.
set -euo pipefail
PORT_BASE=21400
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

alloc_port PA
alloc_port PDEAD
alloc_port PX
start_origin A "$PA"
write_ini "$E2E_TMP/rh.ini" "$PX" "$PA"
start_proxy "$E2E_TMP/rh.ini"

python3 - "$PX" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
N = 3000000

def read_all(s, timeout=10):
    s.settimeout(timeout)
    data = b""
    end = "EOF"
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except ConnectionResetError:
        end = "RST"
    except socket.timeout:
        end = "TIMEOUT"
    return data, end

def body_len(data):
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], len(body)

# 1: the answer comes before the upload is done; the client keeps sending for a while
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"POST /early?n=%d HTTP/1.1\r\nHost: t\r\nContent-Length: 20000000\r\n\r\n" % N)
s.setblocking(False)
t0 = time.time()
while time.time() - t0 < 1.0:
    try:
        s.send(b"x" * 65536)
    except BlockingIOError:
        time.sleep(0.01)
    except OSError:
        break
s.setblocking(True)
data, end = read_all(s)
status, n = body_len(data)
assert status == b"HTTP/1.1 200 OK", status
assert n == N and end == "EOF", "early answer: got %d of %d body bytes, then %s" % (n, N, end)
print("ok - early answer to an unfinished upload arrived whole (%d bytes, then FIN)" % n)

# 2: a keep-alive HTTP/1.0 client gets a close-delimited response (which 1.0 cannot frame
# otherwise, so the proxy must close) and pipelines another request before reading
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /close?n=%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % N)
time.sleep(0.3)
s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
data, end = read_all(s)
status, n = body_len(data)
assert status.endswith(b" 200 OK"), status
assert n == N and end == "EOF", "close-delimited: got %d of %d body bytes, then %s" % (n, N, end)
print("ok - close-delimited answer with a pipelined request behind it arrived whole")
PY
pass "responses arrive whole when the proxy closes a connection the client still writes to"

# a POST whose connect fails (a dead backend the health check has not been asked about) goes to
# the next backend: no byte of it left, so it is as safe to retry as a GET
alloc_port PX2
INI_HC_TYPE=none write_ini "$E2E_TMP/rh2.ini" "$PX2" "$PA $PDEAD"
start_proxy "$E2E_TMP/rh2.ini" proxy2
for i in 1 2 3 4 5 6; do
    req "http://127.0.0.1:$PX2/sink" --data-binary "hello $i"
    assert_status 200 "POST $i with a dead backend in the rotation"
done
pass "POSTs whose connect failed were retried on the live backend"

# a client that never reads its response is timed out after `idle` however long it keeps
# trickling its upload: activity in one direction must not keep the other, stalled one alive
alloc_port PX3
INI_IDLE=2s write_ini "$E2E_TMP/rh3.ini" "$PX3" "$PA"
start_proxy "$E2E_TMP/rh3.ini" proxy3
python3 - "$PX3" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
# 30 MB answered at once (more than the socket buffers hold), the 20 MB upload read slowly after
s.sendall(b"POST /early?n=30000000 HTTP/1.1\r\nHost: t\r\nContent-Length: 20000000\r\n\r\n")
t0 = time.time()
closed_at = None
while time.time() - t0 < 8:
    try:
        s.send(b"x" * 1024)  # never reads: the response stalls in the socket buffers
    except OSError:
        closed_at = time.time() - t0
        break
    time.sleep(0.1)
assert closed_at is not None, "connection still open after 8 s of trickled upload with idle = 2s"
assert closed_at < 6, "closed only after %.1f s" % closed_at
print("ok - a client that does not read its response is closed after %.1f s (idle 2 s), upload trickling" % closed_at)
PY
pass "a trickled upload does not keep a stalled response alive past idle"
