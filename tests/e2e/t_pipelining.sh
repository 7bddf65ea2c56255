#!/usr/bin/env bash
# t_pipelining: requests pipelined on one client connection are all answered, in order,
# even when the first is slow and the requests go to different backends; pipelined
# requests with bodies and requests split at odd points across writes work too.
set -euo pipefail
PORT_BASE=20300
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

start_pair_and_proxy # origins A on $PA and B on $PB, the proxy on $PX

H='Host: pipe.example\r\n'
# five requests in one write; the slow one first so order matters
out=$(raw "$PX" --count 5 --timeout 10 \
    "GET /slow?ms=100 HTTP/1.1\r\n$H\r\n" \
    "GET /bytes?n=10 HTTP/1.1\r\n$H\r\n" \
    "GET /status/204 HTTP/1.1\r\n$H\r\n" \
    "GET /chunked?n=100 HTTP/1.1\r\n$H\r\n" \
    "GET /status/404 HTTP/1.1\r\n${H}Connection: close\r\n\r\n")
log "$out"
line() { sed -n "${1}p" <<<"$out"; }
assert_match "$(line 1)" '^RESPONSE 200 backend=[AB] len=5 body=slow\\n$' "pipelined response 1 (/slow)"
assert_match "$(line 2)" '^RESPONSE 200 backend=[AB] len=10 ' "pipelined response 2 (/bytes?n=10)"
assert_match "$(line 3)" '^RESPONSE 204 backend=[AB] len=0 ' "pipelined response 3 (/status/204)"
assert_match "$(line 4)" '^RESPONSE 200 backend=[AB] len=100 ' "pipelined response 4 (/chunked?n=100)"
assert_match "$(line 5)" '^RESPONSE 404 backend=[AB] len=11 body=status 404\\n$' "pipelined response 5 (/status/404)"
assert_match "$(line 6)" '^END count responses=5 ' "exactly five responses"
pass "5 pipelined GETs answered in order"

# pipelined requests with bodies (Content-Length and chunked) between GETs
out=$(raw "$PX" --count 4 --timeout 10 \
    "POST /echo HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello" \
    "GET /slow?ms=50 HTTP/1.1\r\n$H\r\n" \
    "PUT /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n" \
    "GET / HTTP/1.1\r\n$H\r\n")
log "$out"
assert_match "$(line 1)" '^RESPONSE 200 backend=[AB] len=5 body=hello$' "pipelined POST /echo (Content-Length)"
assert_match "$(line 2)" '^RESPONSE 200 backend=[AB] len=5 body=slow\\n$' "pipelined GET /slow after a POST"
assert_match "$(line 3)" '^RESPONSE 200 backend=[AB] len=7 body=abcdefg$' "pipelined PUT /echo (chunked)"
assert_match "$(line 4)" '^RESPONSE 200 backend=([AB]) len=2 body=[AB]\\n$' "pipelined GET / after a chunked PUT"
pass "pipelined requests with bodies answered in order"

# the same requests cut at awkward places, sent in several writes 30 ms apart
out=$(raw "$PX" --count 3 --timeout 10 --gap 30 \
    "GET /bytes?n=3 HT" "TP/1.1\r\nHo" "st: x\r\n\r\nGET /slow?ms=20 HTTP/1.1\r" "\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab" "cdef")
log "$out"
assert_match "$(line 1)" '^RESPONSE 200 backend=[AB] len=3 ' "split request 1"
assert_match "$(line 2)" '^RESPONSE 200 backend=[AB] len=5 body=slow\\n$' "split request 2"
assert_match "$(line 3)" '^RESPONSE 200 backend=[AB] len=6 body=abcdef$' "split request 3"
pass "requests split across writes"
