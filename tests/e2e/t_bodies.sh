#!/usr/bin/env bash
# t_bodies: bodies are streamed both ways, framing is right for every kind of body,
# and the proxy's memory does not grow with the body size.
#   50 MiB uploads (Content-Length, chunked, Expect: 100-continue) echoed back intact;
#   50 MiB downloads with Content-Length, chunked (with trailer), close-delimited;
#   HEAD, 204 and 304 carry no body and keep the connection usable; HTTP/1.0 clients.
set -euo pipefail
PORT_BASE=20200
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

BIG=$((50 * 1024 * 1024))
RSS_SLACK_KB=$((20 * 1024))

start_pair_and_proxy # origins A on $PA and B on $PB, the proxy on $PX
U=http://127.0.0.1:$PX

"$ORIGIN_BIN" --pattern "$BIG" >"$E2E_TMP/big.bin"
big_sha=$(sha256sum <"$E2E_TMP/big.bin" | cut -d' ' -f1)

# warm up both workers and both backends, then take the memory baseline
for _ in 1 2 3 4; do
    req "$U/bytes?n=100000"
    assert_status 200 "warm-up"
done
rss0=$(proxy_rss_kb "$PROXY_PID")
if grep -qE 'lib(asan|tsan|msan)' "/proc/$PROXY_PID/maps" 2>/dev/null; then
    RSS_SLACK_KB=$((40 * 1024)) # sanitizer runtimes keep freed memory in quarantine; still < 50 MiB
    log "proxy runs under a sanitizer: RSS slack raised to $RSS_SLACK_KB KiB"
fi
log "proxy VmRSS before big transfers: ${rss0} KiB"

check_rss() { # WHAT
    local hwm rss
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PROXY_PID/status")
    rss=$(proxy_rss_kb "$PROXY_PID")
    log "after $1: VmRSS ${rss} KiB, VmHWM ${hwm} KiB (baseline ${rss0} KiB)"
    (( rss - rss0 <= RSS_SLACK_KB )) || fail "proxy VmRSS grew by $((rss - rss0)) KiB after $1 (buffering whole bodies?)"
    (( hwm - rss0 <= RSS_SLACK_KB )) || fail "proxy peak RSS (VmHWM) grew by $((hwm - rss0)) KiB during $1 (buffering whole bodies?)"
}

# download_sha WHAT URL [CURL ARGS]: status must be 200; prints the body's sha256
download_sha() {
    local what=$1 url=$2
    shift 2
    local code
    code=$("${CURL[@]}" --max-time 90 -o "$E2E_TMP/dl.bin" -w '%{http_code}' "$@" "$url" 2>"$E2E_TMP/dl.err") ||
        fail "$what: curl failed after $(stat -c %s "$E2E_TMP/dl.bin") bytes: $(cat "$E2E_TMP/dl.err")"
    assert_eq "$code" 200 "$what: status"
    sha256sum <"$E2E_TMP/dl.bin" | cut -d' ' -f1
}

# ---- uploads, read whole by the origin (/sink answers with length and digest)
big_digest=$("$ORIGIN_BIN" --digest <"$E2E_TMP/big.bin")
for te in "Content-Length" "chunked"; do
    args=(-H 'Expect:' --data-binary @"$E2E_TMP/big.bin")
    [[ $te == chunked ]] && args+=(-H 'Transfer-Encoding: chunked')
    req "$U/sink" --max-time 90 "${args[@]}"
    assert_status 200 "50 MiB $te upload to /sink"
    assert_eq "$BODY" "$big_digest" "50 MiB $te upload: length and digest seen by the origin"
    check_rss "$te upload to /sink"
    pass "50 MiB $te upload arrived intact"
done

# Expect: 100-continue: the client must see the interim 100 (from the origin or the
# proxy) and then the full echo. --expect100-timeout is long so a missing 100 shows.
head -c $((4 * 1024 * 1024)) "$E2E_TMP/big.bin" >"$E2E_TMP/4m.bin"
code=$("${CURL[@]}" -v --expect100-timeout 8 -H 'Expect: 100-continue' --data-binary @"$E2E_TMP/4m.bin" \
    -o "$E2E_TMP/dl.bin" -w '%{http_code} %{time_total}' "$U/echo" 2>"$E2E_TMP/expect.err") ||
    fail "Expect: 100-continue upload: curl failed: $(tail -n 5 "$E2E_TMP/expect.err")"
assert_eq "${code%% *}" 200 "Expect: 100-continue upload: status"
grep -q '^< HTTP/1.1 100' "$E2E_TMP/expect.err" || fail "Expect: 100-continue: client never got '100 Continue' (took ${code#* } s)"
assert_eq "$(sha256sum <"$E2E_TMP/dl.bin" | cut -d' ' -f1)" "$(sha256sum <"$E2E_TMP/4m.bin" | cut -d' ' -f1)" "Expect: 100-continue echo: sha256"
pass "Expect: 100-continue upload got 100 and echoed intact (${code#* } s)"

# ---- downloads
sha=$(download_sha "50 MiB Content-Length download" "$U/bytes?n=$BIG")
assert_eq "$sha" "$big_sha" "50 MiB /bytes: sha256"
check_rss "Content-Length download"
pass "50 MiB Content-Length download intact"

sha=$(download_sha "50 MiB chunked download" "$U/chunked?n=$BIG")
assert_eq "$sha" "$big_sha" "50 MiB /chunked: sha256"
check_rss "chunked download"
pass "50 MiB chunked download intact"

sha=$(download_sha "50 MiB close-delimited download" "$U/close?n=$BIG")
assert_eq "$sha" "$big_sha" "50 MiB /close: sha256"
check_rss "close-delimited download"
pass "50 MiB close-delimited download intact"

# chunked with trailer: curl writes trailer fields to the header dump
req "$U/chunked?n=70000"
assert_status 200 "small /chunked"
assert_eq "$(header_value "$HDRS" X-Trailer)" "done" "trailer X-Trailer of a chunked response"
pass "chunked trailer passed through"

# a close-delimited response on a keep-alive client connection, followed by another request.
# The origin's FIN often arrives with the last bytes: the proxy must still see the end at once
# (not at upstream_read, 10 s here), hence the 3 s bound.
out=$("${CURL[@]}" --max-time 3 -o /dev/null -o /dev/null -w '%{http_code} %{size_download}\n' "$U/close?n=1000" "$U/bytes?n=10")
assert_eq "$(tr '\n' ' ' <<<"$out")" "200 1000 200 10 " "close-delimited then next request"
pass "close-delimited response then another request"

# the end of a close-delimited body is the origin's FIN, which usually arrives together with the
# last bytes: each response must end at once, not when upstream_read (10 s) runs out
for n in 1 100 1000 20000 100000 1 100 1000 20000 100000; do
    t0=$(now_ms)
    code=$("${CURL[@]}" --max-time 3 -o /dev/null -w '%{http_code} %{size_download}' "$U/close?n=$n") ||
        fail "close-delimited /close?n=$n did not end within 3 s"
    assert_eq "$code" "200 $n" "close-delimited /close?n=$n"
    (( $(now_ms) - t0 < 1000 )) || fail "close-delimited /close?n=$n took $(( $(now_ms) - t0 )) ms"
done
pass "close-delimited responses end when the origin closes"

# for an HTTP/1.1 client the proxy re-frames a close-delimited body as chunked, so the client
# connection survives: two requests, one connection, the first one chunked
out=$("${CURL[@]}" -D "$E2E_TMP/reframe.hdr" -o /dev/null -o /dev/null \
    -w '%{http_code} %{size_download} %{num_connects}\n' "$U/close?n=70000" "$U/close?n=70000")
assert_eq "$(tr '\n' ' ' <<<"$out")" "200 70000 1 200 70000 0 " "close-delimited twice on one connection"
assert_eq "$(header_value "$E2E_TMP/reframe.hdr" Transfer-Encoding)" "chunked" "re-framed as chunked"
pass "close-delimited bodies reach 1.1 clients chunked, on a kept connection"

# ---- HEAD, 204, 304
req "$U/bytes?n=12345" -I
assert_status 200 "HEAD /bytes"
assert_eq "$(header_value "$HDRS" Content-Length)" "12345" "HEAD /bytes: Content-Length as for GET"
# HEAD then GET pipelined on one connection: a body after the HEAD response would be
# parsed as the second response and show up as garbage or a wrong length.
out=$(raw "$PX" --count 3 --timeout 5 --no-body-for 1,2 \
    'HEAD /bytes?n=1000 HTTP/1.1\r\nHost: x\r\n\r\n' \
    'HEAD /chunked?n=1000 HTTP/1.1\r\nHost: x\r\n\r\n' \
    'GET /bytes?n=10 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
assert_match "$(sed -n 1p <<<"$out")" '^RESPONSE 200 .*len=0 ' "HEAD /bytes"
assert_match "$(sed -n 2p <<<"$out")" '^RESPONSE 200 .*len=0 ' "HEAD /chunked"
assert_match "$(sed -n 3p <<<"$out")" '^RESPONSE 200 .*len=10 ' "GET after two HEADs"
assert_not_contains "$out" "leftover" "no stray bytes after HEAD responses"
pass "HEAD responses carry no body"

out=$("${CURL[@]}" -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    -w '%{http_code} %{num_connects} %{size_download}\n' \
    "$U/status/204" "$U/status/304" "$U/status/204" "$U/bytes?n=7")
assert_eq "$(tr '\n' ' ' <<<"$out")" "204 1 0 304 0 0 204 0 0 200 0 7 " "204/304 without body on one kept-alive connection (code connects size)"
pass "204 and 304 carry no body, connection reused"

# ---- bodies around the buffer sizes: a response reads into a 16 KiB buffer; more than that still to
# come goes through a pipe with splice(2) (known length, plain both sides; [upstream] splice, on by
# default) or, without splice, a 64 KiB body buffer. Every framing, byte for byte, both ways.
alloc_port PM
alloc_port PX2
alloc_port PM2
INI_EXTRA="[admin]
listen = 127.0.0.1:$PM" write_ini "$E2E_TMP/rh-splice.ini" "$PX2" "$PA $PB"
# (a second proxy for the same backends: the first one's counters stay as the tests below expect)
start_proxy "$E2E_TMP/rh-splice.ini" proxy-splice
alloc_port PX3
INI_EXTRA="[admin]
listen = 127.0.0.1:$PM2" write_ini "$E2E_TMP/rh-nosplice.ini" "$PX3" "$PA $PB" "splice = false"
start_proxy "$E2E_TMP/rh-nosplice.ini" proxy-nosplice
spliced() { "${CURL[@]}" "http://127.0.0.1:$1/metrics" | awk '$1 == "roundhouse_spliced_responses_total" { print $2 }'; }
for px in "$PX2" "$PX3"; do
    for n in 0 1 16383 16384 16385 65535 65536 65537 1048576; do
        want=$(pattern_sha "$n")
        for kind in bytes chunked close; do
            sha=$(download_sha "/$kind?n=$n via :$px" "http://127.0.0.1:$px/$kind?n=$n")
            assert_eq "$sha" "$want" "/$kind?n=$n through the proxy on :$px: sha256"
        done
    done
done
# the Content-Length bodies with more than 16 KiB still to come after the first read went through
# the pipe: 65535, 65536, 65537 and 1 MiB, and 16385 when the first read took only the head; nothing
# else: chunked and close-delimited bodies need their framing seen
sha=$(download_sha "50 MiB Content-Length download without splice" "http://127.0.0.1:$PX3/bytes?n=$BIG")
assert_eq "$sha" "$(pattern_sha "$BIG")" "50 MiB without splice: sha256"
n_spliced=$(spliced "$PM")
assert_ge "$n_spliced" 4 "spliced responses with splice on"
assert_le "$n_spliced" 5 "spliced responses with splice on"
assert_eq "$(spliced "$PM2")" 0 "spliced responses with splice = false"
# one keep-alive connection: large, tiny, large again (a body buffer does not outlive its response)
out=$("${CURL[@]}" -o "$E2E_TMP/s1" -o "$E2E_TMP/s2" -o "$E2E_TMP/s3" -o "$E2E_TMP/s4" \
    -w '%{http_code} %{num_connects}\n' "$U/bytes?n=1048576" "$U/bytes?n=1" "$U/chunked?n=200000" "$U/bytes?n=65537")
assert_eq "$(tr '\n' ' ' <<<"$out")" "200 1 200 0 200 0 200 0 " "four responses on one connection (code connects)"
assert_eq "$(sha256sum <"$E2E_TMP/s1" | cut -d' ' -f1)" "$(pattern_sha 1048576)" "1 MiB then"
assert_eq "$(sha256sum <"$E2E_TMP/s2" | cut -d' ' -f1)" "$(pattern_sha 1)" "1 byte then"
assert_eq "$(sha256sum <"$E2E_TMP/s3" | cut -d' ' -f1)" "$(pattern_sha 200000)" "200000 chunked then"
assert_eq "$(sha256sum <"$E2E_TMP/s4" | cut -d' ' -f1)" "$(pattern_sha 65537)" "65537 on one connection"
pass "bodies of 0, 1, 16 KiB +-1, 64 KiB +-1 and 1 MiB, Content-Length, chunked and close-delimited, byte for byte, with splice ($n_spliced spliced) and without; four on one connection"

# ---- HTTP/1.0 client
req "$U/" -0
assert_status 200 "HTTP/1.0 GET /"
assert_match "$BODY" '^[AB]$' "HTTP/1.0 GET / body"
for path in "bytes?n=1000000" "chunked?n=1000000" "close?n=1000000"; do
    sha=$(download_sha "HTTP/1.0 /$path" "$U/$path" -0)
    assert_eq "$sha" "$(pattern_sha 1000000)" "HTTP/1.0 /$path: sha256"
done
# an HTTP/1.0 response must not be chunked
"${CURL[@]}" -0 -o /dev/null -D "$E2E_TMP/h10.hdr" "$U/chunked?n=1000"
if grep -qi '^transfer-encoding:' "$E2E_TMP/h10.hdr"; then
    fail "HTTP/1.0 client got Transfer-Encoding: $(cat "$E2E_TMP/h10.hdr")"
fi
sha=$(download_sha "HTTP/1.0 upload" "$U/echo" -0 -H 'Expect:' --data-binary @"$E2E_TMP/4m.bin")
assert_eq "$sha" "$(sha256sum <"$E2E_TMP/4m.bin" | cut -d' ' -f1)" "HTTP/1.0 upload echo: sha256"
pass "HTTP/1.0 client: GET, chunked and close-delimited origins, upload"

# ---- last, as the most demanding: uploads echoed back while they arrive: request and response stream at the same
# time, which needs a proxy that moves both directions at once (no socket buffer holds
# 50 MiB, so a proxy that only reads the response after sending the whole body stalls).
for te in "Content-Length" "chunked"; do
    args=(-H 'Expect:' --data-binary @"$E2E_TMP/big.bin")
    [[ $te == chunked ]] && args+=(-H 'Transfer-Encoding: chunked')
    sha=$(download_sha "50 MiB $te upload to /echo (full-duplex streaming)" "$U/echo" "${args[@]}")
    assert_eq "$sha" "$big_sha" "50 MiB $te echo: sha256"
    check_rss "$te upload to /echo"
    pass "50 MiB $te upload echoed intact"
done

check_rss "all transfers"

# ---- a backend that sends its response head a few bytes at a time (with a 100 Continue first):
# the proxy parses a partial head again only when a new LF arrives, which must never lose the end
# of a head that came with, or before, other bytes
alloc_port PT
alloc_port PX3
python3 - "$PT" >>"$E2E_TMP/trickle.log" 2>&1 <<'PY' &
import socket, sys, time
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(16)
while True:
    c, _ = ls.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(4096)
        if not d:
            break
        data += d
    if not data:  # a health probe
        c.close()
        continue
    resp = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-Pad: " + b"p" * 300 +
            b"\r\nContent-Length: 7\r\n\r\ntrickle")
    for i in range(0, len(resp), 3):
        c.sendall(resp[i:i + 3])
        time.sleep(0.001)
    c.close()
PY
LAST_PID=$!
E2E_PIDS+=("$LAST_PID")
wait_port "$PT" 5 "$LAST_PID" || fail "trickling backend did not listen on $PT"
INI_KEEPALIVE=0 write_ini "$E2E_TMP/rh3.ini" "$PX3" "$PT"
start_proxy "$E2E_TMP/rh3.ini" proxy3
for i in 1 2 3; do
    req "http://127.0.0.1:$PX3/"
    assert_status 200 "response head trickled 3 bytes at a time ($i)"
    assert_eq "$BODY" "trickle" "trickled response body ($i)"
done
pass "a response head trickled 3 bytes at a time, after a 100 Continue, is parsed whole"
