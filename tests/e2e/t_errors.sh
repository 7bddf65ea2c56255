#!/usr/bin/env bash
# t_errors: malformed and ambiguous requests are answered by the proxy itself with the
# right status (400, 414, 431, 408, 400/501) and are never forwarded to a backend.
set -euo pipefail
PORT_BASE=20500
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

start_pair_and_proxy # origins A on $PA and B on $PB, the proxy on $PX

# sanity: a good request works (and is counted by one origin)
req "http://127.0.0.1:$PX/"
assert_status 200 "good request before the bad ones"
before=$(($(origin_stat "$PA" requests) + $(origin_stat "$PB" requests)))

# expect_status "WANT_REGEX" WHAT SEGMENT...: first response status matches WANT_REGEX
expect_status() {
    local want=$1 what=$2 out status
    shift 2
    out=$(raw "$PX" --count 1 --timeout 5 "$@")
    status=$(sed -n 's/^RESPONSE \([0-9]*\) .*/\1/p' <<<"$out" | head -n1)
    [[ $status =~ ^($want)$ ]] || fail "$what: expected HTTP $want, got '${status:-none}': $out"
    pass "$what -> $status"
}

expect_status 400 "Content-Length with Transfer-Encoding" \
    'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
expect_status 400 "Transfer-Encoding with Content-Length (other order)" \
    'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n'
expect_status 400 "two differing Content-Length" \
    'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'
expect_status 400 "Content-Length list with differing values" \
    'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!'
expect_status 400 "non-numeric Content-Length" \
    'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello'
expect_status '400|501' "Transfer-Encoding: gzip" \
    'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello'
expect_status '400|501' "Transfer-Encoding: chunked, gzip (not ending in chunked)" \
    'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n'
expect_status 501 "CONNECT (tunnels are not proxied)" \
    'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n'
expect_status 400 "obs-fold header continuation" \
    'GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n'
expect_status 400 "NUL in a header value" \
    'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n'
expect_status 400 "bare CR in a header value" \
    'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n'
expect_status 400 "space before the colon" \
    'GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n'
expect_status 400 "HTTP/1.1 without Host" \
    'GET / HTTP/1.1\r\nX-A: b\r\n\r\n'
expect_status 400 "two Host headers" \
    'GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'
expect_status 400 "garbage request line" \
    'HELLO\r\n\r\n'
expect_status 400 "request line with too many parts" \
    'GET / x HTTP/1.1\r\nHost: x\r\n\r\n'

big=$(head -c $((20 * 1024)) /dev/zero | tr '\0' a)
expect_status 431 "20 KiB header" "GET / HTTP/1.1\r\nHost: x\r\nX-Big: $big\r\n\r\n"
many=""
for i in $(seq 1 400); do many+="X-H$i: $(head -c 40 /dev/zero | tr '\0' b)\r\n"; done
expect_status 431 "400 headers of 50 bytes (20 KiB head)" "GET / HTTP/1.1\r\nHost: x\r\n$many\r\n"
uri=$(head -c $((9 * 1024)) /dev/zero | tr '\0' u)
expect_status 414 "9 KiB URI" "GET /$uri HTTP/1.1\r\nHost: x\r\n\r\n"

# slow header: half a head, then silence; client_header = 2s
out=$(raw "$PX" --count 1 --timeout 5 'GET / HTTP/1.1\r\nHost: x\r\n')
status=$(sed -n 's/^RESPONSE \([0-9]*\) .*/\1/p' <<<"$out")
assert_eq "$status" 408 "half a head then stall: status (within 5 s): $out"
ms=$(sed -n 's/^END .* elapsed_ms=\([0-9]*\).*/\1/p' <<<"$out")
assert_ge "$ms" 1500 "408 came after about client_header (2 s), not at once"
pass "stalled head -> 408 after $ms ms"
# and the connection is closed after the 408
out=$(raw "$PX" --count 2 --timeout 5 'GET / HTTP/1.1\r\nHost: x\r\n')
assert_match "$out" 'END (closed|reset) responses=1 ' "connection closed after 408"
pass "connection closed after 408"

# nothing above reached an origin
after=$(($(origin_stat "$PA" requests) + $(origin_stat "$PB" requests)))
assert_eq "$after" "$before" "requests counted by the origins after the rejected requests"
pass "no rejected request reached a backend"

# the proxy still works, and a rejected request does not poison a later good one
req "http://127.0.0.1:$PX/"
assert_status 200 "good request after the bad ones"
after=$(($(origin_stat "$PA" requests) + $(origin_stat "$PB" requests)))
assert_eq "$after" "$((before + 1))" "origin request count after one more good request"
pass "proxy healthy after the bad requests"
