#!/usr/bin/env bash
# t_headers: what the backend receives: X-Forwarded-For appended, hop-by-hop headers
# (Connection, the headers it names, Keep-Alive, Upgrade, TE, Proxy-Connection) removed,
# end-to-end headers kept, Host kept, or rewritten when [upstream] host_header is set.
set -euo pipefail
PORT_BASE=20600
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

alloc_port PA
alloc_port PX
alloc_port PY
start_origin A "$PA"
write_ini "$E2E_TMP/rh.ini" "$PX" "$PA"
start_proxy "$E2E_TMP/rh.ini"

# hdr_lines NAME: the header lines named NAME (case-insensitive) in $BODY, CR stripped
hdr_lines() {
    tr -d '\r' <<<"$BODY" | grep -i "^$1:" || true
}
hdr_count() { hdr_lines "$1" | grep -c . || true; }

req "http://127.0.0.1:$PX/headers"
assert_status 200 "GET /headers"
assert_match "$(head -n1 <<<"$BODY" | tr -d '\r')" '^GET /headers HTTP/1\.[01]$' "request line as forwarded"
assert_eq "$(hdr_lines X-Forwarded-For)" "X-Forwarded-For: 127.0.0.1" "X-Forwarded-For added"
assert_eq "$(hdr_lines Host)" "Host: 127.0.0.1:$PX" "Host preserved"
pass "X-Forwarded-For: 127.0.0.1 added, Host kept"

req "http://127.0.0.1:$PX/headers" -H 'X-Forwarded-For: 1.2.3.4'
assert_status 200 "GET /headers with X-Forwarded-For"
assert_eq "$(hdr_count X-Forwarded-For)" 1 "one X-Forwarded-For line"
assert_match "$(hdr_lines X-Forwarded-For)" '^X-Forwarded-For: 1\.2\.3\.4, ?127\.0\.0\.1$' "X-Forwarded-For appended to the client's"
pass "client X-Forwarded-For extended: $(hdr_lines X-Forwarded-For)"

req "http://127.0.0.1:$PX/headers"
assert_eq "$(hdr_lines X-Forwarded-Proto)" "X-Forwarded-Proto: http" "X-Forwarded-Proto added"
req "http://127.0.0.1:$PX/headers" -H 'X-Forwarded-Proto: https' -H 'x-forwarded-proto: https'
assert_eq "$(hdr_lines X-Forwarded-Proto)" "X-Forwarded-Proto: http" "a client's X-Forwarded-Proto replaced"
pass "X-Forwarded-Proto: http, a client's own claim replaced"

req "http://127.0.0.1:$PX/headers" -H 'Host: custom.example:8080'
assert_eq "$(hdr_lines Host)" "Host: custom.example:8080" "client Host preserved"
pass "client Host preserved"

# hop-by-hop headers
req "http://127.0.0.1:$PX/headers" \
    -H 'Connection: X-Foo, Keep-Alive, close' \
    -H 'X-Foo: secret' \
    -H 'Keep-Alive: timeout=5' \
    -H 'Upgrade: h2c' \
    -H 'TE: trailers' \
    -H 'Proxy-Connection: keep-alive' \
    -H 'X-Keep: kept'
assert_status 200 "GET /headers with hop-by-hop headers"
for h in X-Foo Keep-Alive Upgrade TE Proxy-Connection; do
    assert_eq "$(hdr_lines "$h")" "" "hop-by-hop header $h must not reach the backend"
done
# the proxy may send its own Connection header, but nothing from the client's
conn=$(hdr_lines Connection)
if [[ -n $conn ]]; then
    assert_match "$conn" '^Connection: (keep-alive|close)$' "Connection header sent upstream (only the proxy's own is allowed)"
    assert_eq "$(hdr_count Connection)" 1 "Connection lines sent upstream"
fi
assert_eq "$(hdr_lines X-Keep)" "X-Keep: kept" "end-to-end header kept"
assert_eq "$(hdr_lines Host)" "Host: 127.0.0.1:$PX" "Host with hop-by-hop headers"
pass "hop-by-hop headers removed, end-to-end kept"

# Connection: close alone
req "http://127.0.0.1:$PX/headers" -H 'Connection: close'
assert_status 200 "GET /headers with Connection: close"
conn=$(hdr_lines Connection)
[[ -z $conn || $conn =~ ^Connection:\ (keep-alive|close)$ ]] || fail "Connection upstream: $conn"
pass "Connection: close handled"

# the same header named by Connection in mixed case, and several Connection lines
out=$(raw "$PX" --count 1 --timeout 5 --body-limit 4096 \
    'GET /headers HTTP/1.1\r\nHost: h.example\r\nConnection: x-bar\r\nConnection: X-BAZ\r\nX-Bar: 1\r\nx-baz: 2\r\nX-Qux: 3\r\n\r\n')
assert_match "$out" '^RESPONSE 200 ' "raw GET /headers"
assert_not_contains "$(tr '[:upper:]' '[:lower:]' <<<"$out")" 'x-bar:' "x-bar named by Connection"
assert_not_contains "$(tr '[:upper:]' '[:lower:]' <<<"$out")" 'x-baz:' "X-BAZ named by a second Connection line"
assert_contains "$out" 'X-Qux: 3' "X-Qux kept"
pass "headers named in several Connection lines removed, case-insensitively"

# second proxy with host_header
write_ini "$E2E_TMP/rh2.ini" "$PY" "$PA" "host_header = rewritten.example"
start_proxy "$E2E_TMP/rh2.ini" proxy2
req "http://127.0.0.1:$PY/headers"
assert_status 200 "GET /headers via host_header proxy"
assert_eq "$(hdr_lines Host)" "Host: rewritten.example" "Host rewritten by host_header"
assert_eq "$(hdr_lines X-Forwarded-For)" "X-Forwarded-For: 127.0.0.1" "X-Forwarded-For via host_header proxy"
req "http://127.0.0.1:$PY/headers" -H 'Host: client.example'
assert_eq "$(hdr_lines Host)" "Host: rewritten.example" "client Host replaced by host_header"
assert_eq "$(hdr_count Host)" 1 "one Host line"
pass "host_header = rewritten.example rewrites Host"
