"""Half-sent heads: what a proxy's memory costs per connection that is still sending its head.

usage: halfheads.py PORT PROXY_PID N HEAD_BYTES FINISH

Opens N connections to 127.0.0.1:PORT and on each sends the first HEAD_BYTES of a request head
that is not finished (no blank line). Connections are opened in batches; after each batch it waits
(bounded) until the proxy holds that many more descriptors (/proc/PID/fd): the listeners use
TCP_DEFER_ACCEPT, so a connection is accepted once its bytes arrive. Once all N are accepted and the
proxy's RSS has stopped moving, it reads RSS again and prints

    RSS_BEFORE_KB <kb>
    RSS_AFTER_KB <kb>
    BYTES_PER_CONN <(after - before) * 1024 / N>

Then it checks that the proxy closed none of them and answered none (nothing readable on any),
finishes the head on FINISH connections spread over the set (each must get a 200 with its body),
and closes them all. Exit 0 when every check held; 1 (with a message on stderr) otherwise. The
memory figure is printed either way and judged by the caller.
"""
import os
import resource
import select
import socket
import sys
import time

PORT, PID, N, HEAD_BYTES, FINISH = (int(a) for a in sys.argv[1:6])
BATCH = 500
PREFIX = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: "


def die(msg):
    print("halfheads: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def rss_kb():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    die("no VmRSS for pid %d" % PID)


def nfds():
    try:
        return len(os.listdir("/proc/%d/fd" % PID))
    except FileNotFoundError:
        die("proxy pid %d is gone" % PID)


def wait_fds(target, timeout):
    deadline = time.monotonic() + timeout
    while True:
        n = nfds()
        if n >= target:
            return n
        if time.monotonic() >= deadline:
            return n
        time.sleep(0.02)


def wait_rss_stable(timeout):
    """RSS read until two readings 250 ms apart agree (bounded); returns the last reading."""
    deadline = time.monotonic() + timeout
    last = rss_kb()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = rss_kb()
        if now == last:
            return now
        last = now
    return last


def read_response(s, timeout):
    """Status line of one response whose body is fully read (Content-Length), or None."""
    s.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        if time.monotonic() >= deadline:
            return None
        try:
            chunk = s.recv(4096)
        except (socket.timeout, OSError):
            return None
        if not chunk:
            return None
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        if time.monotonic() >= deadline:
            return None
        try:
            chunk = s.recv(4096)
        except (socket.timeout, OSError):
            return None
        if not chunk:
            return None
        body += chunk
    return head.split(b"\r\n", 1)[0].decode("latin-1")


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = N + 100
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            die("open-file hard limit %d is below the %d descriptors needed" % (hard, want))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    pad = HEAD_BYTES - len(PREFIX)
    if pad < 1:
        die("HEAD_BYTES must exceed %d" % len(PREFIX))
    partial = PREFIX + b"a" * pad  # no CRLF after the value, no blank line: the head is unfinished
    assert len(partial) == HEAD_BYTES

    fd0 = nfds()
    before = rss_kb()
    print("RSS_BEFORE_KB %d" % before, flush=True)

    socks = []
    t0 = time.monotonic()
    while len(socks) < N:
        for _ in range(min(BATCH, N - len(socks))):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", PORT))
                s.sendall(partial)
            except OSError as e:
                die("connection %d: %s" % (len(socks) + 1, e))
            socks.append(s)
        got = wait_fds(fd0 + len(socks), 10)
        if got < fd0 + len(socks):
            die("after %d connections the proxy holds only %d more descriptors (10 s)" % (len(socks), got - fd0))
    print("# %d connections opened and accepted in %.1f s" % (N, time.monotonic() - t0), file=sys.stderr, flush=True)

    after = wait_rss_stable(5)
    print("RSS_AFTER_KB %d" % after, flush=True)
    print("BYTES_PER_CONN %d" % ((after - before) * 1024 // N), flush=True)

    # none closed, none answered: a half-sent head gets nothing until client_header runs out
    p = select.poll()
    for s in socks:
        p.register(s.fileno(), select.POLLIN | select.POLLRDHUP | select.POLLERR | select.POLLHUP)
    ready = p.poll(0)
    if ready:
        die("%d of the %d held connections were answered or closed by the proxy" % (len(ready), N))

    # a few of them finish their head: each gets its 200
    step = max(1, N // FINISH)
    for i in range(0, step * FINISH, step):
        s = socks[i]
        s.sendall(b"\r\n\r\n")
        status = read_response(s, 5)
        if status is None or not status.startswith("HTTP/1.1 200"):
            die("connection %d: finishing its head got %r, not a 200" % (i, status))
    print("# %d connections finished their heads: 200 each" % FINISH, file=sys.stderr, flush=True)

    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
