#!/usr/bin/env python3
"""A tiny authoritative DNS server for roundhouse's end-to-end tests. Standard library only.

  dnsserver.py --port N --zone FILE [--pidfile F]      serve (UDP and TCP, 127.0.0.1 only)
  dnsserver.py --port N --query NAME [--type A|AAAA]   ask it (or any server on 127.0.0.1:N)

Serving: prints "ready" on stdout once both sockets are bound, writes its PID to F if asked, and
logs one line per query on stderr ("query web.test A -> NOERROR 2"). SIGTERM or SIGINT stops it
(exit 0, the pidfile removed). Use it without lib.sh like this:

  printf 'web.test 127.0.0.1\\n' >zone
  python3 dnsserver.py --port 5353 --zone zone --pidfile dns.pid >dns.out 2>dns.log &
  until grep -qx ready dns.out; do sleep 0.1; done
  ...  # roundhouse with [upstream] resolver = 127.0.0.1:5353 and resolve = 1s
  printf 'web.test 127.0.0.1\\nweb.test 127.0.0.2\\n' >zone.new && mv zone.new zone
  ...
  kill "$(cat dns.pid)"

The zone FILE, one record per line ('#' starts a comment, blank lines are skipped):
  NAME ADDRESS        an A (IPv4) or AAAA (IPv6) record; a name may have many
  NAME cname TARGET   NAME is an alias of TARGET (the answer carries the chain, up to 8 links)
  NAME servfail       queries for NAME are answered SERVFAIL
  NAME refused        ... REFUSED
  NAME drop           ... never answered (the client times out)
Names are case-insensitive, a trailing dot is ignored. The file is read again whenever its mtime,
size or inode changes, so a test edits it (best: write a new file and rename it over the old one)
to add or remove addresses. A line that does not parse is reported on stderr and skipped.

Answers: AA set, TTL 1, the question echoed. A name the zone does not have gets NXDOMAIN; a name
it has without records of the type asked gets an empty NOERROR answer (NODATA). A UDP answer
longer than 512 bytes (or than the EDNS size the query offers) is sent truncated (TC, no records),
so the client asks again over TCP, where the whole answer goes. Other query types (MX, SRV, ...)
get NODATA for a known name. Malformed queries are dropped.
"""
import argparse
import ipaddress
import os
import select
import signal
import socket
import struct
import sys
import threading

T_A, T_CNAME, T_AAAA, T_OPT = 1, 5, 28, 41
C_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TYPE_NAMES = {1: "A", 5: "CNAME", 28: "AAAA", 41: "OPT"}
TTL = 1
MAX_CHAIN = 8
MAX_QUERY = 4096


def norm(name):
    return name.rstrip(".").lower()


def log(msg):
    sys.stderr.write("dnsserver: %s\n" % msg)
    sys.stderr.flush()


class Zone:
    """The zone file, read again when it changes (checked before each query)."""

    def __init__(self, path):
        self.path = path
        self.stamp = None
        self.addrs = {}   # name -> [(type, packed address)] in file order
        self.cnames = {}  # name -> target
        self.special = {}  # name -> "servfail" | "refused" | "drop"
        self.lock = threading.Lock()

    def refresh(self):
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None
        with self.lock:
            if stamp == self.stamp:
                return
            self.stamp = stamp
            addrs, cnames, special = {}, {}, {}
            try:
                with open(self.path, encoding="utf-8", errors="replace") as f:
                    lines = f.readlines()
            except OSError as e:
                log("cannot read %s: %s (serving an empty zone)" % (self.path, e))
                lines = []
            for n, line in enumerate(lines, 1):
                words = line.split("#", 1)[0].split()
                if not words:
                    continue
                name = norm(words[0])
                if len(words) == 2 and words[1].lower() in ("servfail", "refused", "drop"):
                    special[name] = words[1].lower()
                    continue
                if len(words) == 3 and words[1].lower() == "cname":
                    cnames[name] = norm(words[2])
                    continue
                if len(words) == 2:
                    try:
                        ip = ipaddress.ip_address(words[1])
                    except ValueError:
                        ip = None
                    if ip is not None:
                        rtype = T_A if ip.version == 4 else T_AAAA
                        addrs.setdefault(name, []).append((rtype, ip.packed))
                        continue
                log("%s:%d: not 'NAME ADDRESS', 'NAME cname TARGET' or 'NAME servfail|refused|drop': %r"
                    % (self.path, n, line.rstrip("\n")))
            self.addrs, self.cnames, self.special = addrs, cnames, special

    def lookup(self, qname, qtype):
        """-> (rcode or "drop", [(owner, type, rdata)])"""
        self.refresh()
        with self.lock:
            name = norm(qname)
            if name in self.special:
                s = self.special[name]
                return ("drop" if s == "drop" else SERVFAIL if s == "servfail" else REFUSED), []
            if name not in self.addrs and name not in self.cnames:
                return NXDOMAIN, []
            records = []
            for _ in range(MAX_CHAIN + 1):
                if name in self.cnames:
                    target = self.cnames[name]
                    records.append((name, T_CNAME, encode_name(target)))
                    name = target
                    continue
                for rtype, packed in self.addrs.get(name, []):
                    if rtype == qtype:
                        records.append((name, rtype, packed))
                break
            return NOERROR, records


def encode_name(name):
    out = b""
    for label in norm(name).split("."):
        if not label:
            continue
        raw = label.encode("ascii", "replace")[:63]
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def parse_query(msg):
    """-> (id, flags, qname, qtype, qclass, question bytes, edns udp size or None), or None"""
    if len(msg) < 12:
        return None
    qid, flags, qd, an, ns, ar = struct.unpack("!6H", msg[:12])
    if flags & 0x8000 or qd != 1:
        return None
    pos, labels = 12, []
    while True:
        if pos >= len(msg):
            return None
        n = msg[pos]
        if n == 0:
            pos += 1
            break
        if n > 63 or pos + 1 + n > len(msg) or len(labels) > 127:
            return None
        labels.append(msg[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    if pos + 4 > len(msg):
        return None
    qtype, qclass = struct.unpack("!HH", msg[pos:pos + 4])
    question = msg[12:pos + 4]
    # An EDNS OPT record in the additional section (the only thing a stub sends there): its
    # class is the UDP size the client accepts.
    edns = None
    if an == 0 and ns == 0 and ar == 1:
        p = pos + 4
        if p + 11 <= len(msg) and msg[p] == 0:
            rtype, rclass = struct.unpack("!HH", msg[p + 1:p + 5])
            if rtype == T_OPT:
                edns = max(512, min(rclass, 4096))
    return qid, flags, ".".join(labels), qtype, qclass, question, edns


def build_answer(query, zone, over_tcp):
    """-> (reply bytes or None to drop, log line)"""
    parsed = parse_query(query)
    if parsed is None:
        return None, "malformed query (%d bytes) dropped" % len(query)
    qid, qflags, qname, qtype, qclass, question, edns = parsed
    opcode = (qflags >> 11) & 0xF
    if opcode != 0:
        rcode, records = NOTIMP, []
    elif qclass != C_IN:
        rcode, records = REFUSED, []
    else:
        rcode, records = zone.lookup(qname, qtype)
    tname = TYPE_NAMES.get(qtype, str(qtype))
    if rcode == "drop":
        return None, "query %s %s -> dropped" % (qname, tname)
    body = b""
    for owner, rtype, rdata in records:
        body += encode_name(owner) + struct.pack("!HHIH", rtype, C_IN, TTL, len(rdata)) + rdata
    flags = 0x8000 | 0x0400 | (qflags & 0x0100) | rcode  # QR, AA, the query's RD
    an = len(records)
    limit = 65535 if over_tcp else (edns or 512)
    if 12 + len(question) + len(body) > limit:
        flags |= 0x0200  # TC: ask again over TCP
        body, an = b"", 0
    header = struct.pack("!6H", qid, flags, 1, an, 0, 0)
    note = " (truncated)" if flags & 0x0200 else ""
    return header + question + body, "query %s %s%s -> %s %d%s" % (
        qname, tname, " tcp" if over_tcp else "", RCODE_NAMES.get(rcode, rcode), len(records), note)


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def serve_tcp_conn(conn, zone):
    with conn:
        conn.settimeout(5)
        try:
            while True:
                head = recv_exact(conn, 2)
                if head is None:
                    return
                (length,) = struct.unpack("!H", head)
                query = recv_exact(conn, length)
                if query is None:
                    return
                reply, line = build_answer(query, zone, True)
                log(line)
                if reply is None:
                    continue
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return


def serve(args):
    zone = Zone(args.zone)
    zone.refresh()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", args.port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", args.port))
    tcp.listen(16)
    if args.pidfile:
        with open(args.pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(args.pidfile + ".tmp", args.pidfile)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    try:
        while True:
            readable, _, _ = select.select([udp, tcp], [], [])
            if udp in readable:
                query, peer = udp.recvfrom(MAX_QUERY)
                reply, line = build_answer(query, zone, False)
                log(line)
                if reply is not None:
                    udp.sendto(reply, peer)
            if tcp in readable:
                conn, _ = tcp.accept()
                threading.Thread(target=serve_tcp_conn, args=(conn, zone), daemon=True).start()
    finally:
        if args.pidfile:
            try:
                os.unlink(args.pidfile)
            except OSError:
                pass


def query(args):
    qtype = {"A": T_A, "AAAA": T_AAAA}[args.type.upper()]
    qid = os.getpid() & 0xFFFF
    msg = struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0) + encode_name(args.query) + struct.pack("!HH", qtype, C_IN)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(args.timeout)
    s.sendto(msg, ("127.0.0.1", args.port))
    try:
        reply = s.recv(65535)
    except socket.timeout:
        print("timed out")
        return 2
    if len(reply) < 12 or struct.unpack("!H", reply[:2])[0] != qid:
        print("bad reply")
        return 2
    flags, qd, an = struct.unpack("!3H", reply[2:8])
    rcode = flags & 0xF
    if rcode != NOERROR:
        print(RCODE_NAMES.get(rcode, rcode))
        return 1
    pos = 12
    for _ in range(qd):  # skip the question (uncompressed, as we send it)
        while reply[pos] != 0:
            pos += 1 + reply[pos]
        pos += 5
    for _ in range(an):
        while reply[pos] != 0 and reply[pos] < 0xC0:
            pos += 1 + reply[pos]
        pos += 2 if reply[pos] >= 0xC0 else 1
        rtype, _, _, rdlen = struct.unpack("!HHIH", reply[pos:pos + 10])
        rdata = reply[pos + 10:pos + 10 + rdlen]
        pos += 10 + rdlen
        if rtype in (T_A, T_AAAA) and rtype == qtype:
            print(ipaddress.ip_address(rdata))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--zone")
    ap.add_argument("--pidfile")
    ap.add_argument("--query", metavar="NAME")
    ap.add_argument("--type", default="A", choices=["A", "AAAA", "a", "aaaa"])
    ap.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args()
    if args.query:
        return query(args)
    if not args.zone:
        ap.error("--zone is required to serve")
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
