#!/usr/bin/env python3
"""Raw HTTP/1.1 client for roundhouse's e2e tests (standard library only).

  rawclient.py --port P [--timeout S] [--count N] [--gap MS] [--shut] SEGMENT...

Each SEGMENT is sent as bytes after decoding Python escapes (\\r \\n \\x00 \\t ...);
"@FILE" sends the bytes of FILE. Segments are sent in order with --gap ms between them
(all in one write when --gap is 0 and there are several: they are joined first).
The connection is never half-closed unless --shut.

Then responses are read and parsed (1xx skipped and reported, Content-Length, chunked,
close-delimited; 204/304 and the responses listed by --no-body-for have no body) until --count responses, EOF, or --timeout s.
Output, one line per response:
  RESPONSE <status> backend=<X-Backend or -> len=<body length> body=<first --body-limit (120) bytes, escaped>
  INFO <1xx status>
and a last line:
  END <count|closed|reset|timeout|error> responses=<n> elapsed_ms=<ms> [leftover=<bytes>]
Exit status 0 unless the arguments are wrong or the connection could not be made.
"""
import argparse
import codecs
import socket
import sys
import time


def decode_segment(s):
    if s.startswith("@"):
        with open(s[1:], "rb") as f:
            return f.read()
    return codecs.escape_decode(s.encode("latin-1"))[0]


class Reader:
    def __init__(self, sock, deadline):
        self.sock = sock
        self.buf = b""
        self.deadline = deadline
        self.eof = False
        self.why = None

    def more(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.why = "timeout"
            return False
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            self.why = "timeout"
            return False
        except ConnectionResetError:
            self.why = "reset"
            self.eof = True
            return False
        except OSError:
            self.why = "error"
            self.eof = True
            return False
        if not d:
            self.why = "closed"
            self.eof = True
            return False
        self.buf += d
        return True

    def until(self, marker):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = self.buf[: i + len(marker)]
                self.buf = self.buf[i + len(marker):]
                return out
            if not self.more():
                return None

    def exactly(self, n):
        while len(self.buf) < n:
            if not self.more():
                return None
        out = self.buf[:n]
        self.buf = self.buf[n:]
        return out

    def rest(self):
        while self.more():
            pass
        out = self.buf
        self.buf = b""
        return out


def read_response(r, no_body=False):
    """Returns (status, headers dict, body) or None if incomplete.
    no_body: the response is to a HEAD request."""
    while True:
        head = r.until(b"\r\n\r\n")
        if head is None:
            return None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            return ("garbage", {}, head + r.rest())
        hdrs = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        if 100 <= status < 200:
            print("INFO %d" % status, flush=True)
            continue
        break
    if no_body or status in (204, 304):
        return (status, hdrs, b"")
    te = hdrs.get("transfer-encoding", "")
    if te:
        body = b""
        while True:
            line = r.until(b"\r\n")
            if line is None:
                return None
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers
                    t = r.until(b"\r\n")
                    if t is None:
                        return None
                    if t == b"\r\n":
                        return (status, hdrs, body)
            data = r.exactly(size + 2)
            if data is None:
                return None
            body += data[:size]
    if "content-length" in hdrs:
        body = r.exactly(int(hdrs["content-length"]))
        if body is None:
            return None
        return (status, hdrs, body)
    return (status, hdrs, r.rest())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--gap", type=int, default=0)
    ap.add_argument("--shut", action="store_true")
    ap.add_argument("--body-limit", type=int, default=120, help="body bytes to print per response")
    ap.add_argument("--no-body-for", default="",
                    help="comma-separated 1-based indices of responses to HEAD requests")
    ap.add_argument("segments", nargs="+")
    a = ap.parse_args()

    segs = [decode_segment(s) for s in a.segments]
    if a.gap == 0:
        segs = [b"".join(segs)]
    t0 = time.monotonic()
    deadline = t0 + a.timeout
    try:
        sock = socket.create_connection((a.host, a.port), timeout=min(a.timeout, 5))
    except OSError as e:
        print("END connect-failed error=%s" % e, flush=True)
        return 2
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for i, s in enumerate(segs):
            if i and a.gap:
                time.sleep(a.gap / 1000.0)
            sock.sendall(s)
        if a.shut:
            sock.shutdown(socket.SHUT_WR)
    except OSError as e:
        # the server may answer and close before we finished sending; read what came
        print("# send error: %s" % e, flush=True)

    r = Reader(sock, deadline)
    n = 0
    while n < a.count:
        res = read_response(r, str(n + 1) in a.no_body_for.split(","))
        if res is None:
            break
        status, hdrs, body = res
        if status == "garbage":
            print("GARBAGE %r" % body[:200], flush=True)
            break
        n += 1
        print(
            "RESPONSE %d backend=%s len=%d body=%s"
            % (status, hdrs.get("x-backend", "-"), len(body),
               body[:a.body_limit].decode("latin-1").encode("unicode_escape").decode("ascii")),
            flush=True,
        )
    why = "count" if n >= a.count else (r.why or "closed")
    extra = " leftover=%d" % len(r.buf) if r.buf else ""
    print("END %s responses=%d elapsed_ms=%d%s"
          % (why, n, int((time.monotonic() - t0) * 1000), extra), flush=True)
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
