#!/usr/bin/env bash
# t_errors: malformed and ambiguous requests are answered by the proxy itself with the
# right status (400, 414, 431, 408, 400/501) and are never forwarded to a backend.
#
# A status alone does not show who answered: a request the proxy wrongly forwarded can come back
# with the backend's own 400. So every rejection is also checked to be the proxy's own response
# (its body text, no X-Backend header), and to have opened no connection to either origin: with no
# health probes and no upstream keep-alive pool, every connection an origin accepts (X-Raw-Accepts
# of its /stats) is either a forwarded request or one of our own /stats reads.
set -euo pipefail
PORT_BASE=20500
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

# client_header = 1s (write_ini's default is 2s): the stalled heads below wait it out twice
INI_CLIENT_HEADER=1s INI_HC_TYPE=none INI_KEEPALIVE=0 start_pair_and_proxy # origins A on $PA and B on $PB, the proxy on $PX

# raw_accepts: connections accepted by A and B together (X-Raw-Accepts), including the two /stats
# reads made here (so two more each call when nothing else connected)
# (one curl reads both, one after the other, each /stats on its own connection to its origin; the
# header dump holds A's response, then B's: one value (or "-") per response, in that order)
raw_accepts() {
    local p v out vs sum=0
    out=$("${CURL[@]}" --max-time 5 --fail-early -o /dev/null -o /dev/null -D - "http://127.0.0.1:$PA/stats" "http://127.0.0.1:$PB/stats" |
        tr -d '\r' | awk '/^HTTP\// { if (n++) print v; v = "-" } /^[Xx]-[Rr]aw-[Aa]ccepts: *[0-9]*$/ { sub(/^[^:]*: */, ""); v = $0 } END { if (n) print v }')
    mapfile -t vs <<<"$out"
    for p in "$PA" "$PB"; do
        v=${vs[0]:-}
        vs=("${vs[@]:1}")
        [[ $v =~ ^[0-9]+$ ]] || fail "no X-Raw-Accepts in /stats of :$p"
        sum=$((sum + v))
    done
    echo "$sum"
}

# proxy_body STATUS: the start of the body of roundhouse's own error response (local_responses
# in src/conn.c), as rawclient prints it
proxy_body() {
    case $1 in
        400) echo "400 Bad Request: malformed or ambiguous request" ;;
        408) echo "408 Request Timeout: the request did not arrive in time" ;;
        414) echo "414 URI Too Long" ;;
        431) echo "431 Request Header Fields Too Large" ;;
        501) echo "501 Not Implemented: unsupported transfer coding or method" ;;
        *) fail "proxy_body: no proxy response text known for $1" ;;
    esac
}

# assert_own_response WHAT OUT: the first response in rawclient output OUT is roundhouse's own
# error response (no X-Backend header, the proxy's body text for its status)
assert_own_response() {
    local what=$1 out=$2 line status
    line=$(grep -m1 '^RESPONSE ' <<<"$out") || fail "$what: no response: $out"
    status=$(sed -n 's/^RESPONSE \([0-9]*\) .*/\1/p' <<<"$line")
    [[ $line == "RESPONSE $status backend=- "* ]] ||
        fail "$what: the $status came from a backend (it has X-Backend), the request was forwarded: $line"
    [[ $line == *" body=$(proxy_body "$status")"* ]] ||
        fail "$what: the $status is not roundhouse's own (body '$(proxy_body "$status")' expected): $line"
}

# sanity: a good request works (and is counted by one origin)
req "http://127.0.0.1:$PX/"
assert_status 200 "good request before the bad ones"
before=$(($(origin_stat "$PA" requests) + $(origin_stat "$PB" requests)))

# expect_status "WANT_REGEX" WHAT SEGMENT...: first response status matches WANT_REGEX, the
# response is the proxy's own, and no origin accepted a connection meanwhile
expect_status() {
    local want=$1 what=$2 out status accepts0 accepts1
    shift 2
    accepts0=$(raw_accepts)
    out=$(raw "$PX" --count 1 --timeout 5 "$@")
    status=$(sed -n 's/^RESPONSE \([0-9]*\) .*/\1/p' <<<"$out" | head -n1)
    [[ $status =~ ^($want)$ ]] || fail "$what: expected HTTP $want, got '${status:-none}': $out"
    assert_own_response "$what" "$out"
    accepts1=$(raw_accepts)
    assert_eq "$accepts1" "$((accepts0 + 2))" "$what: connections accepted by the origins (2 are our /stats reads): the request was forwarded"
    pass "$what -> $status (the proxy's own, nothing reached a backend)"
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
b40=$(head -c 40 /dev/zero | tr '\0' b)
for i in $(seq 1 400); do many+="X-H$i: $b40\r\n"; done
expect_status 431 "400 headers of 50 bytes (20 KiB head)" "GET / HTTP/1.1\r\nHost: x\r\n$many\r\n"
uri=$(head -c $((9 * 1024)) /dev/zero | tr '\0' u)
expect_status 414 "9 KiB URI" "GET /$uri HTTP/1.1\r\nHost: x\r\n\r\n"

# slow header: half a head, then silence; client_header = 1s
accepts0=$(raw_accepts)
out=$(raw "$PX" --count 1 --timeout 5 'GET / HTTP/1.1\r\nHost: x\r\n')
status=$(sed -n 's/^RESPONSE \([0-9]*\) .*/\1/p' <<<"$out")
assert_eq "$status" 408 "half a head then stall: status (within 5 s): $out"
assert_own_response "half a head then stall" "$out"
ms=$(sed -n 's/^END .* elapsed_ms=\([0-9]*\).*/\1/p' <<<"$out")
assert_ge "$ms" 750 "408 came after about client_header (1 s), not at once"
pass "stalled head -> 408 after $ms ms"
# and the connection is closed after the 408
out=$(raw "$PX" --count 2 --timeout 5 'GET / HTTP/1.1\r\nHost: x\r\n')
assert_match "$out" 'END (closed|reset) responses=1 ' "connection closed after 408"
assert_own_response "half a head then stall (2)" "$out"
accepts1=$(raw_accepts)
assert_eq "$accepts1" "$((accepts0 + 2))" "half heads: connections accepted by the origins (2 are our /stats reads)"
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
