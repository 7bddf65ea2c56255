#!/usr/bin/env python3
"""Recording backend (and its client) for roundhouse's request-smuggling e2e tests.
Standard library only.

  recorder.py serve --port P --dir DIR [--host 127.0.0.1] [--fixed FDIR]
  recorder.py client --port P [--timeout S] [--count N] [--gap MS] [--eof]
                     [--raw-out FILE] [--no-body-for I,J] SEGMENT...
  recorder.py drive    (runs client commands read from stdin; see drive())

serve: an HTTP/1.1 server, one thread per connection, that parses like a naive strict-CRLF
backend, so what a proxy forwards is read the way such a backend would read it:
  - a head line ends only at CRLF: "X: y\\nContent-Length: 41\\r\\n" is ONE header X whose value
    holds a LF;
  - the LAST Transfer-Encoding line and the FIRST Content-Length line decide the framing
    (chunked if that Transfer-Encoding value mentions chunked, else the Content-Length, else
    no body); a chunk-size line is read up to CRLF, trailers up to the empty line;
  - every request is answered "200" with Content-Length, "X-Conn: N" (the connection number,
    1, 2, ... in accept order) and the body "resp for METHOD TARGET\\n"; the connection stays
    open (HTTP/1.1) unless the request says Connection: close (or is HTTP/1.0 without
    keep-alive).
Special targets:
  /drop-once-ID   the first time that exact target arrives: read the whole request, close
                  without answering; later: answer normally
  /drop           always read the request and close without answering
  /fixed/NAME     answer with the bytes of FDIR/NAME verbatim (after the request body); if
                  FDIR/NAME.pre exists its bytes are sent right after the head, before the body
                  is read (an interim 1xx); the connection stays open and is read on
  /fixed-close/NAME  the same, then close
  ...?d=MS or ...&d=MS   answered (normally) MS milliseconds after the request was read
What it writes in DIR:
  conn-N.raw      every byte received on connection N, appended as it arrives
  all.raw         every byte received on any connection, in arrival order
  requests.log    one line per request head parsed:
                  conn=N req=K METHOD TARGET VERSION framing=none|cl:LEN|chunked|badcl
                  cl_lines=C te_lines=T bare_lf=B
                  (B: LF bytes in the head not preceded by CR)
  req-K.head      the exact bytes of request K's head (request line to the empty line)
  req-K.body      request K's body, decoded (chunk framing removed), once it is complete
  bodies.log      conn=N req=K done len=L | conn=N req=K incomplete (EOF or bad chunk)
  conns.log       conn=N open | conn=N closed
Prints "ready" on stdout once listening; exits 0 on SIGTERM or SIGINT.

client: sends SEGMENTs (Python escapes decoded, "@FILE" = the file's bytes; with --gap > 0
they are sent separately, --gap ms apart), then reads --count responses (a head ends at an
empty line, CRLF or bare LF; Content-Length, chunked, or close-delimited; 1xx reported and
skipped; no body for 204/304 and the responses listed in --no-body-for), and with --eof goes on
reading until EOF or --timeout. Output:
  INFO <1xx status>
  RESPONSE <status> conn=<X-Conn or -> len=<body length> body=<escaped body, 200 bytes max>
  END <closed|reset|timeout|count> responses=<n> elapsed_ms=<ms> [extra=<escaped unread bytes>]
--raw-out FILE: every byte received is written there.
"""
import argparse
import codecs
import os
import re
import signal
import socket
import sys
import threading
import time


# ---------------------------------------------------------------- server

class Recorder:
    def __init__(self, d, fixed):
        self.dir = d
        self.fixed = fixed
        self.lock = threading.Lock()
        self.nconn = 0
        self.nreq = 0
        self.dropped_once = set()

    def append(self, name, data):
        with open(os.path.join(self.dir, name), "ab") as f:
            f.write(data)

    def log(self, name, line):
        with self.lock:
            self.append(name, (line + "\n").encode("latin-1"))

    def next_conn(self):
        with self.lock:
            self.nconn += 1
            return self.nconn

    def next_req(self):
        with self.lock:
            self.nreq += 1
            return self.nreq

    def first_drop(self, target):
        with self.lock:
            if target in self.dropped_once:
                return False
            self.dropped_once.add(target)
            return True


class Eof(Exception):
    pass


class Conn:
    def __init__(self, rec, sock, n):
        self.rec = rec
        self.sock = sock
        self.n = n
        self.buf = b""

    def more(self):
        try:
            d = self.sock.recv(65536)
        except OSError:
            d = b""
        if not d:
            raise Eof()
        self.rec.append("conn-%d.raw" % self.n, d)
        self.rec.append("all.raw", d)
        self.buf += d

    def line(self):
        """Up to CRLF (only CRLF ends a line); returns the line without it."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = self.buf[:i]
                self.buf = self.buf[i + 2:]
                return out
            self.more()

    def exactly(self, n):
        out = b""
        while len(out) < n:
            if not self.buf:
                self.more()
            take = min(n - len(out), len(self.buf))
            out += self.buf[:take]
            self.buf = self.buf[take:]
        return out

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def run(self):
        rec = self.rec
        rec.log("conns.log", "conn=%d open" % self.n)
        try:
            while self.one():
                pass
        except Eof:
            pass
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            rec.log("conns.log", "conn=%d closed" % self.n)

    def one(self):
        """Serve one request; False: close the connection."""
        rec = self.rec
        # the request line (empty lines before it are skipped, as RFC 9112 2.2 allows)
        raw_head = b""
        while True:
            ln = self.line()
            raw_head += ln + b"\r\n"
            if ln:
                break
        reqline = ln
        lines = []
        while True:
            ln = self.line()
            raw_head += ln + b"\r\n"
            if not ln:
                break
            lines.append(ln)
        k = rec.next_req()
        parts = reqline.split(b" ", 2)
        while len(parts) < 3:
            parts.append(b"-")
        method, target, version = parts
        te = None
        cl = None
        te_lines = cl_lines = 0
        conn_tokens = []
        for ln in lines:
            name, _, value = ln.partition(b":")
            lname = name.strip().lower()
            value = value.strip(b" \t")
            if lname == b"transfer-encoding":
                te_lines += 1
                te = value  # the last one
            elif lname == b"content-length":
                cl_lines += 1
                if cl is None:
                    cl = value  # the first one
            elif lname == b"connection":
                conn_tokens += [t.strip().lower() for t in value.split(b",")]
        if te is not None and b"chunked" in te.lower():
            framing = "chunked"
        elif cl is not None:
            try:
                framing = "cl:%d" % int(cl.decode("latin-1"), 10)
                if int(cl.decode("latin-1"), 10) < 0:
                    framing = "badcl"
            except ValueError:
                framing = "badcl"
        else:
            framing = "none"
        bare_lf = sum(1 for i, c in enumerate(raw_head) if c == 10 and (i == 0 or raw_head[i - 1] != 13))
        rec.append("req-%d.head" % k, raw_head)
        rec.log("requests.log", "conn=%d req=%d %s %s %s framing=%s cl_lines=%d te_lines=%d bare_lf=%d" % (
            self.n, k, method.decode("latin-1"), target.decode("latin-1"), version.decode("latin-1"),
            framing, cl_lines, te_lines, bare_lf))
        if framing == "badcl":
            rec.log("bodies.log", "conn=%d req=%d incomplete (bad Content-Length)" % (self.n, k))
            return False

        t = target.decode("latin-1")
        fixed = None
        close_after = False
        if t.startswith("/fixed/") or t.startswith("/fixed-close/"):
            close_after = t.startswith("/fixed-close/")
            name = os.path.basename(t.split("/", 2)[2])
            path = os.path.join(rec.fixed or rec.dir, name)
            with open(path, "rb") as f:
                fixed = f.read()
            if os.path.exists(path + ".pre"):
                with open(path + ".pre", "rb") as f:
                    self.send(f.read())

        # the body
        body = b""
        try:
            if framing == "chunked":
                while True:
                    sl = self.line()
                    try:
                        size = int(sl.split(b";")[0].strip(b" \t"), 16)
                    except ValueError:
                        rec.log("bodies.log", "conn=%d req=%d incomplete (bad chunk size %r)" % (self.n, k, sl[:60]))
                        return False
                    if size == 0:
                        while self.line():  # trailers up to the empty line
                            pass
                        break
                    body += self.exactly(size)
                    self.exactly(2)
            elif framing.startswith("cl:"):
                body = self.exactly(int(framing[3:]))
        except Eof:
            rec.log("bodies.log", "conn=%d req=%d incomplete (EOF after %d body bytes)" % (self.n, k, len(body)))
            raise
        rec.append("req-%d.body" % k, body)
        rec.log("bodies.log", "conn=%d req=%d done len=%d" % (self.n, k, len(body)))

        if t == "/drop" or (t.startswith("/drop-once-") and rec.first_drop(t)):
            return False
        m = re.search(r"[?&]d=([0-9]+)$", t)
        if m:
            time.sleep(int(m.group(1)) / 1000.0)
        if fixed is not None:
            return self.send(fixed) and not close_after
        rbody = b"resp for " + method + b" " + target + b"\n"
        resp = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Conn: %d\r\n\r\n" % (len(rbody), self.n))
        if method != b"HEAD":
            resp += rbody
        if not self.send(resp):
            return False
        if b"close" in conn_tokens:
            return False
        if version == b"HTTP/1.0" and b"keep-alive" not in conn_tokens:
            return False
        return True


def serve(a):
    os.makedirs(a.dir, exist_ok=True)
    rec = Recorder(a.dir, a.fixed)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(128)

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    try:
        while True:
            s, _ = ls.accept()
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = Conn(rec, s, rec.next_conn())
            threading.Thread(target=c.run, daemon=True).start()
    except SystemExit:
        pass
    finally:
        ls.close()
    sys.stdout.flush()
    os._exit(0)  # daemon threads may sit in recv


# ---------------------------------------------------------------- client

def esc(b, limit=200):
    return b[:limit].decode("latin-1").encode("unicode_escape").decode("ascii")


class Reader:
    def __init__(self, sock, deadline, raw_out):
        self.sock = sock
        self.buf = b""
        self.deadline = deadline
        self.raw_out = raw_out
        self.why = None

    def more(self):
        if self.why is not None:
            return False
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
            return False
        except OSError:
            self.why = "reset"
            return False
        if not d:
            self.why = "closed"
            return False
        if self.raw_out:
            self.raw_out.write(d)
            self.raw_out.flush()
        self.buf += d
        return True

    def head(self):
        """Lines up to an empty line; a line ends at LF (a CR before it is dropped)."""
        pos = 0
        while True:
            i = self.buf.find(b"\n", pos)
            if i < 0:
                if not self.more():
                    return None
                continue
            ln = self.buf[pos:i]
            pos = i + 1
            if ln in (b"", b"\r") and pos > 2:
                out = self.buf[:pos]
                self.buf = self.buf[pos:]
                return [x[:-1] if x.endswith(b"\r") else x for x in out.split(b"\n")[:-2]]

    def line(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                out = self.buf[:i]
                self.buf = self.buf[i + 1:]
                return out[:-1] if out.endswith(b"\r") else out
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


def read_response(r, no_body):
    while True:
        lines = r.head()
        if lines is None:
            return None
        parts = lines[0].split(b" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            return ("garbage", {}, b"\n".join(lines))
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            hdrs[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        if 100 <= status < 200:
            print("INFO %d" % status, flush=True)
            continue
        break
    if no_body or status in (204, 304):
        return (status, hdrs, b"")
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        body = b""
        while True:
            ln = r.line()
            if ln is None:
                return None
            try:
                size = int(ln.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                return ("garbage", {}, ln)
            if size == 0:
                while True:
                    t = r.line()
                    if t is None:
                        return None
                    if t == b"":
                        return (status, hdrs, body)
            data = r.exactly(size)
            if data is None or r.line() is None:
                return None
            body += data
    if "content-length" in hdrs:
        try:
            n = int(hdrs["content-length"])
        except ValueError:
            return ("garbage", hdrs, b"")
        body = r.exactly(n)
        if body is None:
            return None
        return (status, hdrs, body)
    return (status, hdrs, r.rest())


def decode_segment(s):
    if s.startswith("@"):
        with open(s[1:], "rb") as f:
            return f.read()
    return codecs.escape_decode(s.encode("latin-1"))[0]


def client(a):
    segs = [decode_segment(s) for s in a.segments]
    if a.gap == 0:
        segs = [b"".join(segs)]
    t0 = time.monotonic()
    deadline = t0 + a.timeout
    try:
        sock = socket.create_connection((a.host, a.port), timeout=min(a.timeout, 5))
    except OSError as e:
        print("END connect-failed responses=0 elapsed_ms=0 error=%s" % e, flush=True)
        return 2
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    raw_out = open(a.raw_out, "wb") if a.raw_out else None
    try:
        for i, s in enumerate(segs):
            if i and a.gap:
                time.sleep(a.gap / 1000.0)
            sock.sendall(s)
    except OSError as e:
        print("# send error: %s" % e, flush=True)
    r = Reader(sock, deadline, raw_out)
    n = 0
    nobody = [x for x in a.no_body_for.split(",") if x]
    while n < a.count:
        res = read_response(r, str(n + 1) in nobody)
        if res is None:
            break
        status, hdrs, body = res
        if status == "garbage":
            print("GARBAGE %s" % esc(body), flush=True)
            break
        n += 1
        print("RESPONSE %d conn=%s len=%d body=%s" % (status, hdrs.get("x-conn", "-"), len(body), esc(body)),
              flush=True)
    if a.eof:
        while r.more():
            pass
    why = r.why if (r.why and (a.eof or n < a.count)) else "count"
    extra = " extra=%s" % esc(r.buf) if r.buf else ""
    print("END %s responses=%d elapsed_ms=%d%s" % (why, n, int((time.monotonic() - t0) * 1000), extra),
          flush=True)
    sock.close()
    if raw_out:
        raw_out.close()
    return 0


def drive(parser):
    """Run client commands read from stdin, one per line: fields separated by \\x1f, the first
    "client" (then the client's arguments) or "esc" (FILE OFFSET LIMIT: the file's bytes from
    OFFSET, at most LIMIT, escaped). Each command's output ends with a line "."."""
    for line in sys.stdin:
        f = line.rstrip("\n").split("\x1f")
        try:
            if f[0] == "client":
                client(parser.parse_args(f))
            elif f[0] == "esc":
                try:
                    with open(f[1], "rb") as fh:
                        fh.seek(int(f[2]))
                        print(esc(fh.read(int(f[3])), int(f[3])))
                except OSError:
                    print("(no file)")
            else:
                print("END error unknown command %r" % f[0])
        except SystemExit:
            print("END error bad arguments %r" % f)
        except Exception as e:  # report, keep serving
            print("END error %s" % e)
        print(".", flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--dir", required=True)
    s.add_argument("--fixed", default=None)
    c = sub.add_parser("client")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--timeout", type=float, default=3.0)
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--gap", type=int, default=0)
    c.add_argument("--eof", action="store_true")
    c.add_argument("--raw-out", default=None)
    c.add_argument("--no-body-for", default="")
    c.add_argument("segments", nargs="+")
    sub.add_parser("drive")
    a = ap.parse_args()
    if a.cmd == "drive":
        ap.exit_on_error = False
        drive(ap)
        return 0
    if a.cmd == "serve":
        serve(a)
        return 0
    return client(a)


if __name__ == "__main__":
    sys.exit(main())
