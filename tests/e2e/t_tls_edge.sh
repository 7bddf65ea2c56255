#!/usr/bin/env bash
# t_tls_edge: TLS at the edge ([server] listen_tls, cert/key pairs chosen by SNI).
#   https through the proxy to plain origins; the second certificate for its SNI, the first for
#   an unknown or no SNI; ALPN http/1.1; TLS 1.2 and 1.3; session resumption (1.2 and 1.3);
#   a client stalling in the handshake is closed after client_header; bad cert/key files are
#   refused at start with FILE:LINE and the key; 50 MiB up, down and echoed over the edge;
#   plain `listen` beside `listen_tls` in the same process; wrk over https (keep-alive and a
#   connection per request) with no errors, on every worker at once (also run under TSan).
set -euo pipefail
PORT_BASE=21600
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

BIG=$((50 * 1024 * 1024))
# client_header = 1s: a handshake stalled after a partial ClientHello must be closed by then
# (STALL_MAX_MS), and not at once (STALL_MIN_MS). A client that sends nothing at all reaches the
# proxy only after TCP_DEFER_ACCEPT (1 s, src/net.c) lets it through: ~1 s more (STALL_SILENT_MAX_MS).
STALL_MAX_MS=2000
STALL_SILENT_MAX_MS=2600
STALL_MIN_MS=500

make_certs
CA=$CERTS/ca.pem

alloc_port PA
alloc_port PB
alloc_port PX
alloc_port PT
start_origin A "$PA"
start_origin B "$PB"
edge_lines() { # CERT1 KEY1 [CERT2 KEY2 ...]: the [server] lines of a TLS listener with these pairs
    echo "listen_tls = 127.0.0.1:$PT"
    while (($# >= 2)); do
        echo "cert = $1"
        echo "key = $2"
        shift 2
    done
}
INI_SERVER_EXTRA=$(edge_lines "$CERTS/edge.pem" "$CERTS/edge.key" "$CERTS/edge2.pem" "$CERTS/edge2.key") \
    INI_CLIENT_HEADER=1s write_ini "$E2E_TMP/rh.ini" "$PX" "$PA $PB"
start_proxy "$E2E_TMP/rh.ini"
wait_port "$PT" 5 "$PROXY_PID" || fail "proxy did not listen on listen_tls port $PT within 5s"

TLSC=("${CURL[@]}" --cacert "$CA" --resolve "localhost:$PT:127.0.0.1" --resolve "second.test:$PT:127.0.0.1")
HS=https://localhost:$PT

# ---- https through the proxy
for i in 1 2 3 4; do
    req "$HS/" --cacert "$CA" --resolve "localhost:$PT:127.0.0.1"
    assert_status 200 "https://localhost request $i (verified against the test CA)"
    assert_match "$BODY" '^[AB]$' "https request $i: body from a backend"
    seq+=$BODY
done
[[ $seq == *A* && $seq == *B* ]] || fail "https requests did not reach both backends: $seq"
pass "https://localhost:$PT/ answered by the backends ($seq)"

req "$HS/headers" --cacert "$CA" --resolve "localhost:$PT:127.0.0.1" -H 'X-Forwarded-Proto: http'
assert_status 200 "https /headers"
assert_eq "$(grep -ic '^X-Forwarded-Proto:' <<<"$BODY")" 1 "one X-Forwarded-Proto line upstream"
assert_match "$BODY" $'X-Forwarded-Proto: https\r' "X-Forwarded-Proto: https upstream (the client's own replaced)"
pass "requests over listen_tls carry X-Forwarded-Proto: https"

req "https://127.0.0.1:$PT/" --cacert "$CA"
assert_status 200 "https://127.0.0.1 (no SNI: the default certificate, whose SAN has IP 127.0.0.1)"
pass "a client without SNI gets the default certificate"

req "https://second.test:$PT/" --cacert "$CA" --resolve "second.test:$PT:127.0.0.1"
assert_status 200 "https://second.test (only the second certificate names second.test)"
pass "https://second.test:$PT/ verified: the second certificate was chosen by SNI"

# served_cert SNI: subject and SAN of the certificate the proxy presents for SNI (- for none)
served_cert() {
    local sni=() out
    [[ $1 == - ]] || sni=(-servername "$1")
    [[ $1 != - ]] || sni=(-noservername)
    out=$(timeout 10 openssl s_client -connect "127.0.0.1:$PT" "${sni[@]}" </dev/null 2>/dev/null |
        openssl x509 -noout -subject -ext subjectAltName 2>&1) || true
    tr '\n' ' ' <<<"$out" | tr -s ' '
}
c=$(served_cert second.test)
assert_contains "$c" "DNS:second.test" "certificate served for SNI second.test"
assert_not_contains "$c" "DNS:localhost" "certificate served for SNI second.test"
c=$(served_cert localhost)
assert_contains "$c" "DNS:localhost" "certificate served for SNI localhost"
c=$(served_cert unknown.test)
assert_contains "$c" "DNS:localhost" "certificate served for an unknown SNI (the default)"
assert_not_contains "$c" "second.test" "certificate served for an unknown SNI"
c=$(served_cert -)
assert_contains "$c" "DNS:localhost" "certificate served without SNI (the default)"
pass "certificate by SNI: second.test → edge2, unknown.test and none → edge (default)"

# ---- ALPN
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$PT" -servername localhost -alpn h2,http/1.1 </dev/null 2>/dev/null || true)
assert_contains "$out" "ALPN protocol: http/1.1" "ALPN offered h2,http/1.1 (openssl s_client)"
"${TLSC[@]}" -v -o /dev/null "$HS/" 2>"$E2E_TMP/alpn.err" || fail "curl -v https: $(tail -n 3 "$E2E_TMP/alpn.err")"
grep -qiE 'ALPN.*accepted.*http/1\.1' "$E2E_TMP/alpn.err" ||
    fail "curl did not report ALPN http/1.1: $(grep -i alpn "$E2E_TMP/alpn.err" | tr '\n' ' ')"
pass "ALPN: http/1.1 negotiated ($(grep -iE -m1 'ALPN.*accepted' "$E2E_TMP/alpn.err" | tr -d '\r'))"

# ---- TLS 1.2 and 1.3
code=$("${TLSC[@]}" -v --tlsv1.2 --tls-max 1.2 -o /dev/null -w '%{http_code}' "$HS/" 2>"$E2E_TMP/v12.err") ||
    fail "TLS 1.2 request failed: $(tail -n 3 "$E2E_TMP/v12.err")"
assert_eq "$code" 200 "TLS 1.2 request"
grep -q 'SSL connection using TLSv1.2' "$E2E_TMP/v12.err" || fail "TLS 1.2 not negotiated: $(grep 'SSL connection' "$E2E_TMP/v12.err")"
code=$("${TLSC[@]}" -v --tlsv1.3 -o /dev/null -w '%{http_code}' "$HS/" 2>"$E2E_TMP/v13.err") ||
    fail "TLS 1.3 request failed: $(tail -n 3 "$E2E_TMP/v13.err")"
assert_eq "$code" 200 "TLS 1.3 request"
grep -q 'SSL connection using TLSv1.3' "$E2E_TMP/v13.err" || fail "TLS 1.3 not negotiated: $(grep 'SSL connection' "$E2E_TMP/v13.err")"
pass "TLS 1.2 and TLS 1.3 both work"

# ---- session resumption: a request on the first connection (the server's ticket may only
# arrive with its first write), then a second connection with the saved session
s_client_get() { # SESSION_ARG SESSION_FILE VERSION_FLAG: one GET over s_client; prints its output
    printf 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
        timeout 10 openssl s_client -connect "127.0.0.1:$PT" -servername localhost -CAfile "$CA" \
            "$3" "$1" "$2" -ign_eof 2>&1 || true
}
for v in 1_2 1_3; do
    sess=$E2E_TMP/sess$v.pem
    out=$(s_client_get -sess_out "$sess" "-tls$v")
    assert_contains "$out" "HTTP/1.1 200" "TLS ${v/_/.} first connection: response"
    assert_contains "$out" "Verify return code: 0 (ok)" "TLS ${v/_/.} first connection: verified"
    assert_contains "$out" "New, TLSv${v/_/.}" "TLS ${v/_/.} first connection: full handshake"
    [[ -s $sess ]] || fail "TLS ${v/_/.}: s_client saved no session (no ticket from the server?)"
    out=$(s_client_get -sess_in "$sess" "-tls$v")
    assert_contains "$out" "HTTP/1.1 200" "TLS ${v/_/.} resumed connection: response"
    assert_contains "$out" "Reused, TLSv${v/_/.}" "TLS ${v/_/.} second connection resumed the session"
done
pass "edge session resumption: Reused with TLS 1.2 and TLS 1.3"

# ---- a client stalling in the handshake is closed after client_header (1s)
stall() { # WHAT: connect, send WHAT (nothing or a partial ClientHello), print ms until the proxy closes
    python3 - "$PT" "$1" <<'PY'
import socket, sys, time
port, what = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=6)
t0 = time.monotonic()
if what == "partial":
    # TLS record header (handshake, 200 bytes) + ClientHello header + the first few bytes only
    s.sendall(bytes.fromhex("16030100c8" "010000c4" "0303") + b"\x11" * 10)
try:
    while True:
        d = s.recv(4096)
        if not d:
            print("closed %d" % int((time.monotonic() - t0) * 1000))
            break
except socket.timeout:
    print("open %d" % int((time.monotonic() - t0) * 1000))
except ConnectionResetError:
    print("closed %d" % int((time.monotonic() - t0) * 1000))
PY
}
for what in nothing partial; do
    r=$(stall "$what")
    assert_match "$r" '^closed [0-9]+$' "handshake stalled after sending $what: the proxy closes the connection"
    ms=${r#closed }
    max=$STALL_MAX_MS
    [[ $what != nothing ]] || max=$STALL_SILENT_MAX_MS
    assert_le "$ms" "$max" "ms until a handshake stalled after sending $what is closed (client_header = 1s)"
    assert_ge "$ms" "$STALL_MIN_MS" "ms until a handshake stalled after sending $what is closed (not at once)"
    log "stalled handshake ($what) closed after $ms ms"
done
req "$HS/" --cacert "$CA" --resolve "localhost:$PT:127.0.0.1"
assert_status 200 "https request after the stalled handshakes"
pass "stalled handshakes (nothing, partial ClientHello) closed after ~1 s"

# ---- load over TLS on every worker at once (this scenario also runs under ThreadSanitizer): keep-alive,
# then a new connection per request (handshakes and ticket resumption in both workers)
for mode in keep-alive close; do
    hdr=()
    [[ $mode == close ]] && hdr=(-H 'Connection: close')
    wout=$(timeout 30 wrk -t2 -c16 -d1s --timeout 5s "${hdr[@]}" "https://127.0.0.1:$PT/" 2>&1) ||
        fail "wrk over https ($mode) failed: $wout"
    total=$(awk '/requests in/ { print $1 }' <<<"$wout")
    assert_match "$total" '^[0-9]+$' "wrk over https ($mode): request count"
    assert_ge "$total" 50 "wrk over https ($mode): requests"
    assert_not_contains "$wout" "Socket errors" "wrk over https ($mode): socket errors"
    assert_not_contains "$wout" "Non-2xx" "wrk over https ($mode): non-2xx responses"
    pass "wrk over https, $mode: $total requests, no errors"
done

# ---- plain listen beside listen_tls
req "http://127.0.0.1:$PX/"
assert_status 200 "plain http on listen beside listen_tls"
assert_match "$BODY" '^[AB]$' "plain http body"
req "http://127.0.0.1:$PT/"
assert_ne "$STATUS" 200 "plain http spoken to the listen_tls port"
req "https://127.0.0.1:$PX/" --insecure
assert_ne "$STATUS" 200 "https spoken to the plain listen port"
pass "plain listen and listen_tls in one process, each speaking only its protocol"

# ---- 50 MiB through listen_tls
"$ORIGIN_BIN" --pattern "$BIG" >"$E2E_TMP/big.bin"
big_sha=$(sha256sum <"$E2E_TMP/big.bin" | cut -d' ' -f1) # = pattern_sha "$BIG", computed once
big_digest=$("$ORIGIN_BIN" --digest <"$E2E_TMP/big.bin")
req "$HS/sink" --cacert "$CA" --resolve "localhost:$PT:127.0.0.1" --max-time 90 -H 'Expect:' --data-binary @"$E2E_TMP/big.bin"
assert_status 200 "50 MiB upload over the TLS edge"
assert_eq "$BODY" "$big_digest" "50 MiB upload over the TLS edge: length and digest seen by the origin"
pass "50 MiB upload through listen_tls intact"

download_sha() { # WHAT URL [CURL ARGS]: status must be 200; prints the body's sha256
    local what=$1 url=$2 code
    shift 2
    code=$("${TLSC[@]}" --max-time 90 -o "$E2E_TMP/dl.bin" -w '%{http_code}' "$@" "$url" 2>"$E2E_TMP/dl.err") ||
        fail "$what: curl failed after $(stat -c %s "$E2E_TMP/dl.bin") bytes: $(cat "$E2E_TMP/dl.err")"
    assert_eq "$code" 200 "$what: status"
    sha256sum <"$E2E_TMP/dl.bin" | cut -d' ' -f1
}
sha=$(download_sha "50 MiB download over the TLS edge" "$HS/bytes?n=$BIG")
assert_eq "$sha" "$big_sha" "50 MiB /bytes over the TLS edge: sha256"
pass "50 MiB download through listen_tls intact"
sha=$(download_sha "50 MiB echo over the TLS edge (full-duplex)" "$HS/echo" -H 'Expect:' --data-binary @"$E2E_TMP/big.bin")
assert_eq "$sha" "$big_sha" "50 MiB /echo over the TLS edge: sha256"
pass "50 MiB upload echoed back through listen_tls intact"

# ---- an HTTP/1.0 client reading a close-delimited body: the end is the close, so the proxy must
# send close_notify before it, or the client cannot tell the end from a cut (Python's ssl with
# suppress_ragged_eofs=False raises SSLEOFError then). 8 MiB fills the socket buffer, so the alert
# may have to wait for room.
for n in 1000 8388608; do
    got=$(python3 - "$CA" "$PT" "$n" <<'PY'
import hashlib, socket, ssl, sys
ca, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
raw = socket.create_connection(("127.0.0.1", port), timeout=20)
s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
s.sendall(b"GET /close?n=%d HTTP/1.0\r\nHost: localhost\r\n\r\n" % n)
data = bytearray()
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break  # close_notify
        data += chunk
except ssl.SSLEOFError:
    print("unclean-eof")
    sys.exit(0)
head, _, body = bytes(data).partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode(), len(body), hashlib.sha256(body).hexdigest())
PY
)
    assert_eq "$got" "HTTP/1.1 200 OK $n $(pattern_sha "$n")" "HTTP/1.0 close-delimited $n bytes over the TLS edge, ended by close_notify"
done
pass "HTTP/1.0 close-delimited bodies end with close_notify, then the close"

# ---------------------------------------------------------------- bad cert/key files
# run_rh OUTFILE ARGS...: run roundhouse (bounded), stdout+stderr to OUTFILE, sets RC
run_rh() {
    local outf=$1
    shift
    RC=0
    timeout 10 "$RH_BIN" "$@" >"$outf" 2>&1 </dev/null || RC=$?
    [[ $RC != 124 ]] || fail "roundhouse $* did not finish within 10 s"
}
printf -- '-----BEGIN CERTIFICATE-----\nthis is not base64 !!\n-----END CERTIFICATE-----\n' >"$E2E_TMP/garbage-cert.pem"
printf -- '-----BEGIN PRIVATE KEY-----\nthis is not base64 !!\n-----END PRIVATE KEY-----\n' >"$E2E_TMP/garbage-key.pem"
alloc_port PX2
alloc_port PT2
# bad_config NAME KEY WHICH CERT1 KEY1 [CERT2 KEY2]: the config is refused, naming FILE:LINE and
# server.KEY, where LINE is that of the WHICH-th "KEY =" line (1 or 2)
bad_config() {
    local name=$1 key=$2 which=$3
    shift 3
    local ini=$E2E_TMP/$name.ini line out
    INI_SERVER_EXTRA=$(PT=$PT2 edge_lines "$@") write_ini "$ini" "$PX2" "$PA"
    line=$(grep -n "^$key = " "$ini" | sed -n "${which}p" | cut -d: -f1)
    run_rh "$E2E_TMP/$name.out" -t -c "$ini"
    out=$(cat "$E2E_TMP/$name.out")
    assert_ne "$RC" 0 "$name: roundhouse -t exit status ($out)"
    assert_contains "$out" "$ini:$line:" "$name: -t error names FILE:LINE"
    assert_contains "$out" "server.$key" "$name: -t error names server.$key"
    pass "$name: -t refused: $(grep -m1 -F "$ini:" <<<"$out")"
    # and a real start is refused the same way, without listening
    run_rh "$E2E_TMP/$name.run" -c "$ini"
    assert_ne "$RC" 0 "$name: roundhouse -c exit status ($(head -c 300 "$E2E_TMP/$name.run"))"
    assert_contains "$(cat "$E2E_TMP/$name.run")" "$ini:$line:" "$name: start-up error names FILE:LINE"
    port_listening "$PX2" && fail "$name: a refused config left something listening on $PX2"
    port_listening "$PT2" && fail "$name: a refused config left something listening on $PT2"
    return 0
}
bad_config missing-cert cert 1 "$E2E_TMP/no-such-cert.pem" "$CERTS/edge.key"
bad_config missing-key key 1 "$CERTS/edge.pem" "$E2E_TMP/no-such-key.pem"
bad_config garbage-cert cert 1 "$E2E_TMP/garbage-cert.pem" "$CERTS/edge.key"
bad_config garbage-key key 1 "$CERTS/edge.pem" "$E2E_TMP/garbage-key.pem"
# a key that does not match its certificate: either line of the pair may be named
ini=$E2E_TMP/mismatch.ini
INI_SERVER_EXTRA=$(PT=$PT2 edge_lines "$CERTS/edge.pem" "$CERTS/edge.key" "$CERTS/edge.pem" "$CERTS/edge2.key") \
    write_ini "$ini" "$PX2" "$PA"
lc=$(grep -n '^cert = ' "$ini" | sed -n 2p | cut -d: -f1)
lk=$(grep -n '^key = ' "$ini" | sed -n 2p | cut -d: -f1)
run_rh "$E2E_TMP/mismatch.out" -t -c "$ini"
out=$(cat "$E2E_TMP/mismatch.out")
assert_ne "$RC" 0 "mismatched key (second pair): roundhouse -t exit status ($out)"
assert_match "$out" "$ini:($lc|$lk):" "mismatched key (second pair): error names FILE:LINE of that pair"
assert_match "$out" 'server\.(cert|key)' "mismatched key: error names server.cert or server.key"
pass "mismatched key refused: $(grep -m1 -F "$ini:" <<<"$out")"

# the proxy that ran all along is still fine
req "$HS/" --cacert "$CA" --resolve "localhost:$PT:127.0.0.1"
assert_status 200 "https request at the end"
