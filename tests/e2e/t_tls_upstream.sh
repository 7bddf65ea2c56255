#!/usr/bin/env bash
# t_tls_upstream: TLS to the backends ([upstream] tls, sni, verify, ca_file, host_header).
#   requests alternate over two TLS origins, which see SNI backend.test and Host: backend.test;
#   upstream connections are kept alive; new connections resume the TLS session;
#   an untrusted (self-signed) backend: 502 with verify=true and one log line, 200 with verify=false;
#   a certificate for another name: 502; 50 MiB up, down and echoed intact over TLS, and up and
#   down with TLS on both sides (listen_tls in front);
#   an OpenSSL peer (openssl s_server -WWW) as the backend.
set -euo pipefail
PORT_BASE=21500
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

# ---- the proxy's log lines are not final: match them loosely, here only
LOG_VERIFY_FAIL='verif|certificate|self.signed|untrusted' # a backend's certificate failed verification

BIG=$((50 * 1024 * 1024))
# health probes are TLS handshakes here (health tls defaults to the upstream's): write_ini's 100 ms
# probe timeout is too tight for that on a loaded 2-CPU machine, and fall = 1 turns one slow probe
# into "no healthy upstream"
export INI_HC_FREQUENCY=1s INI_HC_TIMEOUT=1s

make_certs
CA=$CERTS/ca.pem
TLS_UPSTREAM=("tls = true" "sni = backend.test" "verify = true" "ca_file = $CA" "host_header = backend.test")

# n_matching FILE ADDR ERE: lines of FILE that name ADDR and match ERE (case-insensitive)
n_matching() {
    local n
    n=$(grep -F -- "$2" "$1" | grep -ciE -- "$3") || true
    echo "${n:-0}"
}

# ---------------------------------------------------------------- two TLS origins
alloc_port PA
alloc_port PB
alloc_port PX
alloc_port PXS
start_tls_origin A "$PA" backend
start_tls_origin B "$PB" backend
# listen_tls too: the 50 MiB transfers below also run with TLS on both sides at once
INI_SERVER_EXTRA=$(printf '%s\n' "listen_tls = 127.0.0.1:$PXS" "cert = $CERTS/edge.pem" "key = $CERTS/edge.key") \
    write_ini "$E2E_TMP/rh.ini" "$PX" "$PA $PB" "${TLS_UPSTREAM[@]}"
start_proxy "$E2E_TMP/rh.ini"
U=http://127.0.0.1:$PX
US=https://localhost:$PXS
TLS_BOTH=(--cacert "$CA" --resolve "localhost:$PXS:127.0.0.1")

alternates() { # SEQ: every backend differs from the one before, and both appear
    local s=$1 i
    [[ $s == *A* && $s == *B* ]] || return 1
    for ((i = 1; i < ${#s}; i++)); do
        [[ ${s:i:1} != "${s:i-1:1}" ]] || return 1
    done
}

seq=""
for i in $(seq 1 10); do
    req "$U/"
    assert_status 200 "request $i over TLS upstream"
    assert_match "$BACKEND" '^[AB]$' "request $i: X-Backend"
    assert_eq "$BODY" "$BACKEND" "request $i: body names the backend"
    assert_eq "$(header_value "$HDRS" X-SNI)" "backend.test" "request $i: SNI the origin saw (X-SNI)"
    seq+=$BACKEND
done
alternates "$seq" || fail "backends do not alternate strictly over TLS: $seq"
pass "10 requests over TLS alternate: $seq, SNI backend.test"

# the origins logged their handshakes: every one with SNI backend.test
for o in A B; do
    f=$E2E_TMP/origin-$o.log
    n=$(log_count "$f" '^tls sni=backend\.test ')
    assert_ge "$n" 1 "origin $o logged handshakes with SNI backend.test"
    other=$(grep -E '^tls sni=' "$f" | grep -v '^tls sni=backend\.test ' | head -n 3 || true)
    [[ -z $other ]] || fail "origin $o saw handshakes with another SNI: $other"
done
log "origin A's first handshake: $(grep -m1 '^tls sni=' "$E2E_TMP/origin-A.log")"
pass "origins logged SNI backend.test on every handshake"

req "$U/headers" -H 'Host: client.example'
assert_status 200 "/headers over TLS upstream"
host=$(grep -i '^host:' <<<"$BODY" | tr -d '\r' || true)
assert_eq "$host" "Host: backend.test" "Host header the origin received (host_header = backend.test)"
pass "upstream request carries Host: backend.test"

# ---- keep-alive: 40 sequential requests reuse the upstream TLS connections
a0=$(($(origin_stat "$PA" accepts) + $(origin_stat "$PB" accepts)))
out=$("${CURL[@]}" --max-time 60 -w ' %{http_code}\n' "$U/?i=[1-40]")
n200=$(grep -c ' 200$' <<<"$out" || true)
assert_eq "$n200" 40 "40 sequential requests over TLS upstream all 200"
for i in $(seq 1 10); do
    req "$U/"
    assert_status 200 "separate client connection $i"
done
a1=$(($(origin_stat "$PA" accepts) + $(origin_stat "$PB" accepts)))
full=$(($(origin_stat "$PA" tls_full) + $(origin_stat "$PB" tls_full)))
log "keep-alive: upstream connections before $a0, after 50 more requests $a1 (full handshakes in all: $full)"
assert_le "$a1" 8 "upstream TLS connections for 60 requests (2 workers x 2 backends, some slack)"
pass "upstream TLS connections reused: $a1 connections for 60 requests"

# ---- 50 MiB over TLS upstream: upload (digest at the origin), download, full-duplex echo
"$ORIGIN_BIN" --pattern "$BIG" >"$E2E_TMP/big.bin"
big_sha=$(sha256sum <"$E2E_TMP/big.bin" | cut -d' ' -f1) # = pattern_sha "$BIG", computed once
big_digest=$("$ORIGIN_BIN" --digest <"$E2E_TMP/big.bin")

req "$U/sink" --max-time 90 -H 'Expect:' --data-binary @"$E2E_TMP/big.bin"
assert_status 200 "50 MiB upload to /sink over TLS upstream"
assert_eq "$BODY" "$big_digest" "50 MiB upload over TLS upstream: length and digest seen by the origin"
pass "50 MiB upload over TLS upstream arrived intact"

download_sha() { # WHAT URL [CURL ARGS]: status must be 200; prints the body's sha256
    local what=$1 url=$2 code
    shift 2
    code=$("${CURL[@]}" --max-time 90 -o "$E2E_TMP/dl.bin" -w '%{http_code}' "$@" "$url" 2>"$E2E_TMP/dl.err") ||
        fail "$what: curl failed after $(stat -c %s "$E2E_TMP/dl.bin") bytes: $(cat "$E2E_TMP/dl.err")"
    assert_eq "$code" 200 "$what: status"
    sha256sum <"$E2E_TMP/dl.bin" | cut -d' ' -f1
}
sha=$(download_sha "50 MiB download over TLS upstream" "$U/bytes?n=$BIG")
assert_eq "$sha" "$big_sha" "50 MiB /bytes over TLS upstream: sha256"
pass "50 MiB download over TLS upstream intact"

sha=$(download_sha "50 MiB chunked download over TLS upstream" "$U/chunked?n=$BIG")
assert_eq "$sha" "$big_sha" "50 MiB /chunked over TLS upstream: sha256"
pass "50 MiB chunked download over TLS upstream intact"

# ---- TLS on both sides: client -> listen_tls -> TLS backend
req "$US/sink" "${TLS_BOTH[@]}" --max-time 90 -H 'Expect:' --data-binary @"$E2E_TMP/big.bin"
assert_status 200 "50 MiB upload over TLS on both sides"
assert_eq "$BODY" "$big_digest" "50 MiB upload over TLS on both sides: length and digest seen by the origin"
sha=$(download_sha "50 MiB download over TLS on both sides" "$US/bytes?n=$BIG" "${TLS_BOTH[@]}")
assert_eq "$sha" "$big_sha" "50 MiB /bytes over TLS on both sides: sha256"
pass "50 MiB up and down with TLS on both sides (client and backend) intact"

sha=$(download_sha "50 MiB echo over TLS upstream (full-duplex)" "$U/echo" -H 'Expect:' --data-binary @"$E2E_TMP/big.bin")
assert_eq "$sha" "$big_sha" "50 MiB /echo over TLS upstream: sha256"
pass "50 MiB upload echoed back over TLS upstream intact"

# ---------------------------------------------------------------- resumption
# keepalive = 0: every request connects anew; the first handshake per worker per backend is full,
# the later ones resume the session the worker kept.
alloc_port PC
alloc_port PD
alloc_port PR
start_tls_origin C "$PC" backend
start_tls_origin D "$PD" backend
INI_KEEPALIVE=0 write_ini "$E2E_TMP/resume.ini" "$PR" "$PC $PD" "${TLS_UPSTREAM[@]}"
start_proxy "$E2E_TMP/resume.ini" proxy-resume
for i in $(seq 1 20); do
    req "http://127.0.0.1:$PR/"
    assert_status 200 "keepalive=0 request $i"
done
acc=$(($(origin_stat "$PC" accepts) + $(origin_stat "$PD" accepts)))
full1=$(($(origin_stat "$PC" tls_full) + $(origin_stat "$PD" tls_full)))
res1=$(($(origin_stat "$PC" tls_resumed) + $(origin_stat "$PD" tls_resumed)))
log "keepalive=0, 20 requests: $acc upstream connections, $full1 full handshakes, $res1 resumed"
assert_eq "$acc" 20 "keepalive=0: one upstream connection per request"
assert_ge "$res1" 1 "resumed upstream TLS handshakes after 20 new connections"
assert_le "$full1" 4 "full upstream TLS handshakes (at most one per worker per backend)"
for i in $(seq 1 20); do
    req "http://127.0.0.1:$PR/"
    assert_status 200 "keepalive=0 request $((20 + i))"
    [[ $i != 20 ]] || assert_eq "$(header_value "$HDRS" X-TLS-Resumed)" 1 "last request's upstream connection resumed (X-TLS-Resumed)"
done
full2=$(($(origin_stat "$PC" tls_full) + $(origin_stat "$PD" tls_full)))
res2=$(($(origin_stat "$PC" tls_resumed) + $(origin_stat "$PD" tls_resumed)))
log "keepalive=0, 40 requests: $full2 full handshakes, $res2 resumed"
assert_eq "$((res2 - res1))" 20 "the 20 later upstream connections all resumed"
assert_eq "$full2" "$full1" "no further full handshakes"
assert_ge "$(origin_stat "$PC" tls_resumed)" 1 "origin C saw resumed handshakes"
assert_ge "$(origin_stat "$PD" tls_resumed)" 1 "origin D saw resumed handshakes"
pass "upstream TLS sessions resumed: $full2 full, $res2 resumed handshakes for 40 connections"

# ---------------------------------------------------------------- untrusted backend
# health checks off: the request path alone must find and report the failure
alloc_port PS
alloc_port PV
start_tls_origin S "$PS" selfsigned
INI_HC_TYPE=none write_ini "$E2E_TMP/untrusted.ini" "$PV" "$PS" "${TLS_UPSTREAM[@]}"
start_proxy "$E2E_TMP/untrusted.ini" proxy-untrusted
for i in $(seq 1 10); do
    req "http://127.0.0.1:$PV/"
    assert_status 502 "self-signed backend with verify = true, request $i"
done
sleep_ms 200
assert_eq "$(origin_stat "$PS" requests)" 0 "no request reached the untrusted backend"
n=$(n_matching "$PROXY_LOG" "127.0.0.1:$PS" "$LOG_VERIFY_FAIL")
assert_eq "$n" 1 "proxy log lines naming 127.0.0.1:$PS and a verify failure after 10 requests (once, not per request)"
pass "self-signed backend, verify = true: 502 x10, logged once: $(grep -F "127.0.0.1:$PS" "$PROXY_LOG" | grep -iE -m1 "$LOG_VERIFY_FAIL")"

alloc_port PN
write_ini "$E2E_TMP/noverify.ini" "$PN" "$PS" "tls = true" "sni = backend.test" "verify = false" "host_header = backend.test"
start_proxy "$E2E_TMP/noverify.ini" proxy-noverify
for i in 1 2 3; do
    req "http://127.0.0.1:$PN/"
    assert_status 200 "self-signed backend with verify = false, request $i"
    assert_eq "$BACKEND" S "verify = false: X-Backend"
done
pass "self-signed backend, verify = false: 200"

# ---------------------------------------------------------------- certificate for another name
alloc_port PW
alloc_port PY
start_tls_origin W "$PW" wrongname
INI_HC_TYPE=none write_ini "$E2E_TMP/wrongname.ini" "$PY" "$PW" "${TLS_UPSTREAM[@]}"
start_proxy "$E2E_TMP/wrongname.ini" proxy-wrongname
for i in 1 2 3; do
    req "http://127.0.0.1:$PY/"
    assert_status 502 "backend certificate for other.test, sni backend.test, verify = true, request $i"
done
assert_eq "$(origin_stat "$PW" requests)" 0 "no request reached the wrong-name backend"
pass "certificate for another name: 502 ($(grep -F "127.0.0.1:$PW" "$PROXY_LOG" | head -n1 | cut -c1-200))"

# ---------------------------------------------------------------- OpenSSL peer
# openssl s_server -WWW serves the files of its working directory (HTTP/1.0, close-delimited)
alloc_port PO
alloc_port PZ
mkdir -p "$E2E_TMP/www"
"$ORIGIN_BIN" --pattern $((4 * 1024 * 1024 + 12345)) >"$E2E_TMP/www/file.bin"
file_sha=$(sha256sum <"$E2E_TMP/www/file.bin" | cut -d' ' -f1)
(cd "$E2E_TMP/www" && exec openssl s_server -accept "127.0.0.1:$PO" -cert "$CERTS/backend.pem" \
    -key "$CERTS/backend.key" -WWW -quiet) >"$E2E_TMP/origin-s_server.log" 2>&1 </dev/null &
E2E_PIDS+=("$!")
wait_port "$PO" 5 "$!" || fail "openssl s_server did not listen on $PO"
INI_HC_TYPE=none write_ini "$E2E_TMP/s_server.ini" "$PZ" "$PO" "${TLS_UPSTREAM[@]}"
start_proxy "$E2E_TMP/s_server.ini" proxy-s_server
for i in 1 2; do
    sha=$(download_sha "file from openssl s_server through TLS upstream ($i)" "http://127.0.0.1:$PZ/file.bin")
    assert_eq "$sha" "$file_sha" "file from openssl s_server ($i): sha256"
done
pass "OpenSSL peer (s_server -WWW) as a TLS backend: 4 MiB file intact, twice"
