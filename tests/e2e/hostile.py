"""Hostile clients: random mixes of valid, malformed, truncated and mutated requests (bodies,
chunked, Expect, pipelining, half-close), sent in random pieces at random pace, 8 threads.
usage: hostile.py PORT CONNECTIONS_PER_THREAD SEED"""
import random, socket, sys, threading, time
PORT = int(sys.argv[1])
random.seed(int(sys.argv[3]))
paths = [b"/", b"/slow?ms=50", b"/close?n=5000", b"/chunked?n=30000", b"/bytes?n=70000", b"/status/204", b"/status/304", b"/headers", b"/echo", b"/status/500"]
def req():
    m = random.choice([b"GET", b"HEAD", b"POST", b"PUT", b"OPTIONS", b"G\x00T", b"GET"])
    p = random.choice(paths)
    v = random.choice([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.1", b"HTTP/2.0", b"HTTP/1.1"])
    hs = [b"Host: x"]
    body = b""
    r = random.random()
    if r < 0.2:
        body = bytes(random.getrandbits(8) for _ in range(random.randint(0, 3000)))
        hs.append(b"Content-Length: %d" % len(body))
    elif r < 0.35:
        data = bytes(random.getrandbits(8) for _ in range(random.randint(0, 3000)))
        body = (b"%x\r\n" % len(data)) + data + b"\r\n0\r\n\r\n" if data else b"0\r\n\r\n"
        hs.append(b"Transfer-Encoding: chunked")
    if random.random() < 0.1: hs.append(b"Expect: 100-continue")
    if random.random() < 0.1: hs.append(b"Connection: close")
    if random.random() < 0.05: hs.append(b"Content-Length: 5")
    if random.random() < 0.05: hs.append(b" folded")
    raw = m + b" " + p + b" " + v + b"\r\n" + b"\r\n".join(hs) + b"\r\n\r\n" + body
    if random.random() < 0.1:
        i = random.randrange(len(raw)); raw = raw[:i] + bytes([random.getrandbits(8)]) + raw[i+1:]
    if random.random() < 0.05:
        raw = raw[:random.randrange(len(raw))]
    return raw
def client(n):
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", PORT), timeout=3)
            data = b"".join(req() for _ in range(random.randint(1, 4)))
            # send in random pieces
            i = 0
            while i < len(data):
                k = random.randint(1, 4000)
                s.sendall(data[i:i+k]); i += k
                if random.random() < 0.1: time.sleep(0.01)
            if random.random() < 0.3: s.shutdown(socket.SHUT_WR)
            end = time.time() + random.choice([0.05, 0.5, 3])
            while time.time() < end:
                try:
                    d = s.recv(65536)
                    if not d: break
                except socket.timeout: break
                except OSError: break
            s.close()
        except OSError:
            pass
ts = [threading.Thread(target=client, args=(int(sys.argv[2]),)) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print("hostile clients done")
