#!/usr/bin/env bash
# t_smuggling: request smuggling through the real proxy, seen from a recording backend
# (recorder.py: a naive strict-CRLF HTTP/1.1 server that keeps every byte it receives).
# One worker and one backend, so the pooled upstream connection is shared by all clients: after
# every attack from client A, another client B sends "GET /b-N" and must get exactly its own
# response. Checked on the recorder's bytes: no bare LF in a head, never two framing headers,
# never a smuggled request. Each check prints "ok - ..." or "not ok - ..."; the scenario fails at
# the end if any check failed (they all run).
#   [c1] bare LF in a request head        [c2] Transfer-Encoding forms, trailers
#   [c3] no duplicate of a non-idempotent request on a retry
#   [c4] X-Forwarded-For append/replace/off, client forwarding headers dropped
#   [c5] request targets and Host          [c6] framing numbers, max_body_size
#   [x]  the other RFC 9112 rejections (400, nothing forwarded, connection closed)
set -euo pipefail
PORT_BASE=21800
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

source "$E2E_DIR/recorder.sh"
start_recorder
start_driver

rec_bytes() { stat -c %s "$RDIR/all.raw"; }
rec_lines() { wc -l <"$RDIR/requests.log"; }
# rec_new_bytes FROM: the bytes the recorder got after offset FROM, escaped (600 max)
rec_new_bytes() {
    drv esc "$RDIR/all.raw" "$1" 600
    printf '%s' "${DRV_OUT%$'\n'}"
}
# rec_new_reqs FROM_LINE: requests.log lines after line FROM_LINE
rec_new_reqs() { tail -n +$(($1 + 1)) "$RDIR/requests.log"; }
# head_of LOGLINE: the path of that request's head file
head_of() {
    local k
    k=$(sed -n 's/^conn=[0-9]* req=\([0-9]*\) .*/\1/p' <<<"$1" | head -n1)
    echo "$RDIR/req-${k:-0}.head"
}
conn_of() { sed -n 's/^conn=\([0-9]*\) .*/\1/p' <<<"$1" | head -n1; }
# ---------------------------------------------------------------- proxies

# proxy_up NAME [UPSTREAM LINES...]: a proxy in front of the recorder (1 worker, keepalive 64,
# no health probes); sets PXP[NAME]. Returns 1 (and logs why) if the binary rejects the config.
declare -A PXP=()
declare -A PXWHY=()
proxy_up() {
    local name=$1 port
    shift
    alloc_port port
    INI_THREADS=1 INI_HC_TYPE=none INI_KEEPALIVE=64 write_ini "$E2E_TMP/$name.ini" "$port" "$RP" "$@"
    if ! "$RH_BIN" -t -c "$E2E_TMP/$name.ini" >"$E2E_TMP/$name.check" 2>&1; then
        PXWHY[$name]="config rejected: $(tr '\n' ' ' <"$E2E_TMP/$name.check" | head -c 300)"
        log "proxy $name: ${PXWHY[$name]}"
        return 1
    fi
    start_proxy "$E2E_TMP/$name.ini" "proxy-$name"
    PXP[$name]=$port
}

proxy_up main || fail "proxy main did not start: ${PXWHY[main]:-}"
proxy_up pinned "host_header = pinned.test" || fail "proxy pinned did not start: ${PXWHY[pinned]:-}"
INI_EXTRA=$'[limits]\nmax_body_size = 100' proxy_up limits || true
proxy_up xffrep "x_forwarded_for = replace" || true
proxy_up xffoff "x_forwarded_for = off" || true
PX=${PXP[main]}

# ---------------------------------------------------------------- clients

# cl PORT [client args] SEGMENT...: one client connection. Sets OUT, ST (first final status or
# "none"), ENDW (closed|reset|timeout|count|connect-failed), RBODY (first body, escaped), RCONN (the
# recorder connection of the first response). Parsed in bash (no sed per field: ~100 clients here).
OUT="" ST="" ENDW="" RBODY="" RCONN=""
cl() {
    local port=$1 l st_set=0 body_set=0 conn_set=0
    shift
    drv client --port "$port" "$@"
    OUT=${DRV_OUT%$'\n'}
    ST="" ENDW="" RBODY="" RCONN=""
    local re_st='^RESPONSE ([0-9]*) ' re_end='^END ([a-z-]*) '
    local re_body='^RESPONSE [0-9]* conn=[^ ]* len=[0-9]* body=(.*)$' re_conn='^RESPONSE [0-9]* conn=([^ ]*) '
    while IFS= read -r l; do
        if ((!st_set)) && [[ $l =~ $re_st ]]; then ST=${BASH_REMATCH[1]} st_set=1; fi
        if [[ $l =~ $re_end ]]; then ENDW=${BASH_REMATCH[1]}; fi # the last one
        if ((!body_set)) && [[ $l =~ $re_body ]]; then RBODY=${BASH_REMATCH[1]} body_set=1; fi
        if ((!conn_set)) && [[ $l =~ $re_conn ]]; then RCONN=${BASH_REMATCH[1]} conn_set=1; fi
    done <<<"$OUT"
    ST=${ST:-none}
}

# other_client TAG [PORT]: a new connection B sends GET /b-N and must get exactly its response
BN=0
B_CONN=""
other_client() {
    local tag=$1 port=${2:-$PX}
    BN=$((BN + 1))
    cl "$port" --timeout 3 "GET /b-$BN HTTP/1.1\r\nHost: b\r\n\r\n"
    B_CONN=$RCONN
    local want="resp for GET /b-$BN\\n"
    if [[ $ST == 200 && $RBODY == "$want" ]]; then
        ok "$tag: then client B gets its own response (GET /b-$BN)"
    else
        bad "$tag: then client B gets its own response (GET /b-$BN)" \
            "B sent 'GET /b-$BN HTTP/1.1\\r\\nHost: b\\r\\n\\r\\n', got: $(oneline "$OUT")"
    fi
}

closed() { [[ $ENDW == closed || $ENDW == reset ]]; }

# reject TAG WANT_RE WHAT [client args] -- SEGMENT...: A's request gets WANT_RE, its connection
# is closed, not one byte reaches the recorder, and B then gets its own response.
reject() {
    local tag=$1 want=$2 what=$3 b0 l0 b1 args=()
    shift 3
    while [[ $1 != -- ]]; do
        args+=("$1")
        shift
    done
    shift
    b0=$(rec_bytes)
    l0=$(rec_lines)
    cl "$PX" --eof --timeout 2 "${args[@]}" "$@"
    sleep 0.05
    b1=$(rec_bytes)
    local sent="sent: $*"
    if [[ $ST =~ ^($want)$ ]]; then ok "[$tag] $what -> $ST"; else
        bad "[$tag] $what -> $want" "$sent; client got: $(oneline "$OUT"); recorder got: '$(rec_new_bytes "$b0")'"
    fi
    if [[ $ST =~ ^4 ]]; then
        if closed; then ok "[$tag] $what: connection closed after $ST"; else
            bad "[$tag] $what: connection closed after $ST" "client: $(oneline "$OUT")"
        fi
    fi
    if ((b1 == b0)); then ok "[$tag] $what: nothing forwarded"; else
        bad "[$tag] $what: nothing forwarded" \
            "$sent; recorder got $((b1 - b0)) bytes: '$(rec_new_bytes "$b0")'; parsed: $(oneline "$(rec_new_reqs "$l0")")"
    fi
    other_client "[$tag] $what"
}

# accept_req TAG WHAT SEGMENT...: A gets 200 from the recorder; exactly one new request parsed,
# with no bare LF and at most one framing header; sets NEWREQ (its requests.log line), NEWHEAD.
NEWREQ="" NEWHEAD=""
accept_req() {
    local tag=$1 what=$2 b0 l0 port=${PORT_OVERRIDE:-$PX}
    shift 2
    b0=$(rec_bytes)
    l0=$(rec_lines)
    cl "$port" --timeout 3 "$@"
    NEWREQ=$(rec_new_reqs "$l0")
    NEWHEAD=$(head_of "$NEWREQ")
    local sent="sent: $*"
    if [[ $ST == 200 && $(grep -c . <<<"$NEWREQ") == 1 ]]; then ok "[$tag] $what: forwarded, 200"; else
        bad "[$tag] $what: forwarded, 200" "$sent; client got: $(oneline "$OUT"); recorder parsed: $(oneline "$NEWREQ"); bytes: '$(rec_new_bytes "$b0")'"
    fi
    if [[ -n $NEWREQ ]] && ! grep -qE 'bare_lf=[1-9]|cl_lines=[2-9]|te_lines=[2-9]|cl_lines=[1-9][0-9]* te_lines=[1-9]' <<<"$NEWREQ"; then
        ok "[$tag] $what: head clean (no bare LF, one framing header at most)"
    else
        bad "[$tag] $what: head clean (no bare LF, one framing header at most)" \
            "recorder parsed: $(oneline "$NEWREQ"); head: '$(esc_file "$NEWHEAD")'"
    fi
}

# sanity
cl "$PX" 'GET /hello HTTP/1.1\r\nHost: a\r\n\r\n'
[[ $ST == 200 && $RBODY == 'resp for GET /hello\n' ]] || fail "sanity GET /hello through the proxy: $OUT"
pass "sanity: GET /hello through the proxy"

# ================================================================ [c1] bare LF in a request head
# 41 bytes that form a second request if Content-Length is not seen
# (answered 400 ms late: by then the proxy has pooled the connection again and B's request is on it)
SMUG='GET /smuggled?d=400 HTTP/1.1\r\nHost: a\r\n\r\n'
b0=$(rec_bytes)
l0=$(rec_lines)
C1='POST /c1 HTTP/1.1\r\nHost: a\r\nX: y\nContent-Length: 41\r\n\r\n'"$SMUG"
cl "$PX" --timeout 3 "$C1"
c1_out=$OUT
c1_reqs=$(rec_new_reqs "$l0")
c1_req=$(grep ' POST /c1 ' <<<"$c1_reqs" || true)
c1_head=$(head_of "$c1_req")
c1_detail="sent: $C1; client A got: $(oneline "$c1_out"); recorder got: '$(rec_new_bytes "$b0")'; recorder parsed: $(oneline "$c1_reqs")"
verdict "[c1] bare LF head: A gets its own 200 (the bare LF ends the line, RFC 9112 2.2)" "$c1_detail" \
    test "$ST:$RBODY" == '200:resp for POST /c1\n'
verdict "[c1] bare LF head: no smuggled request parsed by the recorder" "$c1_detail" \
    nogrep smuggled "$RDIR/requests.log"
verdict "[c1] bare LF head: recorder read POST /c1 with framing=cl:41, no bare LF" "$c1_detail" \
    grep -qE 'POST /c1 HTTP/1.1 framing=cl:41 cl_lines=1 te_lines=0 bare_lf=0$' <<<"$c1_req"
verdict "[c1] bare LF head: 'X: y' and 'Content-Length: 41' reach the recorder as two CRLF lines" \
    "$c1_detail; head: '$(esc_file "$c1_head")'" \
    test "$(n_exact "$c1_head" 'X: y'):$(n_exact "$c1_head" 'Content-Length: 41')" == 1:1
other_client "[c1] bare LF head"

# ================================================================ [c2] Transfer-Encoding forms
reject c2 400 "TE ',chunked'" -- 'POST /c2-1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
reject c2 400 "TE 'chunked,'" -- 'POST /c2-2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
reject c2 400 "empty TE line then TE chunked" -- 'POST /c2-3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
reject c2 400 "Content-Length '5, 5'" -- 'POST /c2-4 HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello'
reject c2 400 "two 'Content-Length: 5' lines" -- 'POST /c2-5 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'
reject c2 400 "TE 'chunked, gzip'" -- 'POST /c2-6 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
reject c2 400 "TE 'chunked, chunked'" -- 'POST /c2-7 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
reject c2 400 "two 'Transfer-Encoding: chunked' lines" -- 'POST /c2-8 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
reject c2 400 "Content-Length with TE chunked" -- 'POST /c2-9 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
reject c2 400 "TE chunked in an HTTP/1.0 request" -- 'POST /c2-10 HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
reject c2 501 "TE 'gzip, chunked'" -- 'POST /c2-11 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'

C2V='POST /c2-valid HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \tCHUNKED\t\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
accept_req c2 "TE '\\tCHUNKED\\t'" "$C2V"
c2_detail="sent: $C2V; recorder head: '$(esc_file "$NEWHEAD")'; parsed: $NEWREQ"
verdict "[c2] TE '\\tCHUNKED\\t': recorder sees exactly one line 'Transfer-Encoding: chunked\\r\\n'" "$c2_detail" \
    test "$(n_named "$NEWHEAD" transfer-encoding):$(n_exact "$NEWHEAD" 'Transfer-Encoding: chunked')" == 1:1
body_file=${NEWHEAD%.head}.body
verdict "[c2] TE '\\tCHUNKED\\t': recorder reads the chunked body 'hello'" "$c2_detail; body: '$(esc_file "$body_file")'" \
    test "$(cat "$body_file" 2>/dev/null):$(grep -o 'framing=[^ ]*' <<<"$NEWREQ")" == hello:framing=chunked
other_client "[c2] TE '\\tCHUNKED\\t'"

# malformed trailer lines: the head and the first chunk go first, the trailer 150 ms later
trailer_case() {
    local what=$1 line=$2 marker=$3 b0 l0
    b0=$(rec_bytes)
    l0=$(rec_lines)
    local seg1='POST /c2-trailer HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'
    local seg2="0\\r\\n$line\\r\\n"
    cl "$PX" --eof --timeout 2 --gap 150 "$seg1" "$seg2"
    local detail
    detail="sent: $seg1 then $seg2; client got: $(oneline "$OUT"); recorder got: '$(rec_new_bytes "$b0")'"
    if [[ $ST == 400 ]] || { [[ $ST == none ]] && closed; }; then ok "[c2] trailer $what: client gets 400 or a closed connection ($ST, $ENDW)"; else
        bad "[c2] trailer $what: client gets 400 or a closed connection" "$detail"
    fi
    if tail -c +$((b0 + 1)) "$RDIR/all.raw" | grep -qaF -- "$marker"; then
        bad "[c2] trailer $what: the recorder never sees the trailer line" "$detail"
    else ok "[c2] trailer $what: the recorder never sees the trailer line"; fi
    other_client "[c2] trailer $what"
}
trailer_case "without a colon" 'BadTrailerNoColon' 'BadTrailerNoColon'
trailer_case "name with a space" 'Bad Trailer: x' 'Bad Trailer'
trailer_case "ending in a bare LF" 'X-Bad-Trailer: x\n' 'X-Bad-Trailer'

# ================================================================ [c3] no duplicate of a POST
warm() {
    cl "$PX" --timeout 3 "GET /warm HTTP/1.1\r\nHost: a\r\n\r\n"
    WARM_CONN=$(sed -n 's/^RESPONSE 200 conn=\([0-9]*\) .*/\1/p' <<<"$OUT")
    [[ -n $WARM_CONN ]] || bad "[c3] warm the pool" "GET /warm: $(oneline "$OUT")"
}
drop_once() { # METHOD ID WANT_STATUS WANT_COUNT [extra header lines]
    local m=$1 id=$2 want=$3 wantn=$4 extra=${5:-} n l0 seen
    warm
    l0=$(rec_lines)
    local r="$m /drop-once-$id HTTP/1.1\\r\\nHost: a\\r\\n$extra\\r\\n"
    cl "$PX" --timeout 4 "$r"
    seen=$(rec_new_reqs "$l0")
    n=$(grep -c " $m /drop-once-$id " <<<"$seen" || true)
    local detail
    detail="after GET /warm (conn $WARM_CONN) sent: $r; client got: $(oneline "$OUT"); recorder parsed: $(oneline "$seen")"
    verdict "[c3] $m /drop-once-$id (backend closes the pooled connection without answering): client gets $want" \
        "$detail" test "$ST" == "$want"
    verdict "[c3] $m /drop-once-$id: the recorder saw it $wantn time(s)" "$detail" test "$n" == "$wantn"
    if ! grep -q "^conn=$WARM_CONN .* $m /drop-once-$id " <<<"$seen"; then
        log "note: $m /drop-once-$id did not go first over the warmed connection $WARM_CONN: $(oneline "$seen")"
    fi
}
drop_once POST 1 502 1 'Content-Length: 0\r\n'
drop_once GET 2 200 2
drop_once DELETE 3 200 2
drop_once PATCH 4 502 1
other_client "[c3] after the dropped connections"

# ================================================================ [c4] X-Forwarded-For
XFF_REQ='GET /c4 HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nForwarded: for=6.6.6.6;proto=https\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded_Proto: https\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n'
xff_case() { # MODE PROXYNAME WANTED_XFF_LINE(empty: none)
    local mode=$1 name=$2 want=$3
    if [[ -z ${PXP[$name]:-} ]]; then
        bad "[c4] x_forwarded_for = $mode" "proxy not started: ${PXWHY[$name]:-?}"
        return
    fi
    PORT_OVERRIDE=${PXP[$name]} accept_req c4 "x_forwarded_for = $mode" "$XFF_REQ"
    local h=$NEWHEAD detail
    detail="sent: $XFF_REQ; recorder head: '$(esc_file "$h")'"
    if [[ -n $want ]]; then
        verdict "[c4] $mode: exactly one line '$want'" "$detail" \
            test "$(n_named "$h" x-forwarded-for):$(n_exact "$h" "$want")" == 1:1
    else
        verdict "[c4] $mode: no X-Forwarded-For line" "$detail" \
            test "$(n_named "$h" x-forwarded-for)" == 0
    fi
    verdict "[c4] $mode: no Forwarded, X-Real-IP, X-Forwarded_Proto, X_Forwarded_For line" "$detail" \
        test "$(n_named "$h" 'forwarded|x-real-ip|x-forwarded_proto|x_forwarded_for')" == 0
    verdict "[c4] $mode: exactly one X-Forwarded-Proto line, 'X-Forwarded-Proto: http'" "$detail" \
        test "$(n_named "$h" x-forwarded-proto):$(n_exact "$h" 'X-Forwarded-Proto: http')" == 1:1
}
xff_case append main 'X-Forwarded-For: 1.1.1.1, 2.2.2.2, 127.0.0.1'
xff_case replace xffrep 'X-Forwarded-For: 127.0.0.1'
xff_case off xffoff ''
other_client "[c4] after the X-Forwarded-For requests"

# ================================================================ [c5] targets and Host
target_case() { # PROXYNAME WHAT REQUEST WANT_REQUEST_LINE WANT_HOST_LINE(empty: no check)
    local name=$1 what=$2 r=$3 wantrl=$4 wanthost=$5
    PORT_OVERRIDE=${PXP[$name]} accept_req c5 "$what" "$r"
    local h=$NEWHEAD detail
    detail="sent: $r; recorder head: '$(esc_file "$h")'"
    verdict "[c5] $what: request line '$wantrl'" "$detail" \
        test "$(head -n1 "$h" 2>/dev/null)" == "$wantrl"$'\r'
    if [[ -n $wanthost ]]; then
        verdict "[c5] $what: exactly one Host line, '$wanthost'" "$detail" \
            test "$(n_named "$h" host):$(n_exact "$h" "$wanthost")" == 1:1
    fi
}
target_case pinned "host_header=pinned.test, absolute-form http://evil.example/admin" \
    'GET http://evil.example/admin HTTP/1.1\r\nHost: whatever\r\n\r\n' 'GET /admin HTTP/1.1' 'Host: pinned.test'
other_client "[c5] pinned absolute-form" "${PXP[pinned]}"
target_case main "absolute-form http://evil.example/admin, no host_header" \
    'GET http://evil.example/admin HTTP/1.1\r\nHost: whatever\r\n\r\n' 'GET /admin HTTP/1.1' 'Host: evil.example'
target_case main "absolute-form http://evil.example?x=1" \
    'GET http://evil.example?x=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n' 'GET /?x=1 HTTP/1.1' 'Host: evil.example'
target_case main "OPTIONS *" 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n' 'OPTIONS * HTTP/1.1' 'Host: a'
other_client "[c5] accepted targets"
reject c5 400 "GET *" -- 'GET * HTTP/1.1\r\nHost: a\r\n\r\n'
reject c5 400 "authority-form GET example.com:80" -- 'GET example.com:80 HTTP/1.1\r\nHost: example.com\r\n\r\n'
reject c5 400 "ftp:// target" -- 'GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n'
reject c5 400 "absolute-form with userinfo http://u@x/" -- 'GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n'
reject c5 400 "Host 'a b'" -- 'GET /c5 HTTP/1.1\r\nHost: a b\r\n\r\n'
reject c5 400 "Host 'a@b'" -- 'GET /c5 HTTP/1.1\r\nHost: a@b\r\n\r\n'
reject c5 400 "Host 'a/b'" -- 'GET /c5 HTTP/1.1\r\nHost: a/b\r\n\r\n'
reject c5 400 "Host 'a?b'" -- 'GET /c5 HTTP/1.1\r\nHost: a?b\r\n\r\n'
reject c5 400 "Host 'x:80x'" -- 'GET /c5 HTTP/1.1\r\nHost: x:80x\r\n\r\n'
reject c5 400 "empty Host in HTTP/1.1" -- 'GET /c5 HTTP/1.1\r\nHost:\r\n\r\n'
for hv in '[::1]:8080' 'example.com:8080' 'EXAMPLE.com'; do
    accept_req c5 "Host '$hv' accepted" "GET /c5-host HTTP/1.1\\r\\nHost: $hv\\r\\n\\r\\n"
done
other_client "[c5] accepted Host values"

# ================================================================ [c6] framing numbers, body limit
reject c6 400 "Content-Length 2^53+1" -- 'POST /c6-1 HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740993\r\n\r\nhello'
reject c6 400 "Content-Length 2^64" -- 'POST /c6-2 HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\nhello'
b0=$(rec_bytes)
C6C='POST /c6-3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n20000000000001\r\nhello'
cl "$PX" --eof --timeout 2 "$C6C"
c6_detail="sent: $C6C; client got: $(oneline "$OUT"); recorder got: '$(rec_new_bytes "$b0")'"
if [[ $ST == 400 ]] || { [[ $ST == none ]] && closed; }; then ok "[c6] chunk size 20000000000001: client gets 400 or a closed connection ($ST, $ENDW)"; else
    bad "[c6] chunk size 20000000000001: client gets 400 or a closed connection" "$c6_detail"
fi
if tail -c +$((b0 + 1)) "$RDIR/all.raw" | grep -qaF 20000000000001; then
    bad "[c6] chunk size 20000000000001: never reaches the recorder" "$c6_detail"
else ok "[c6] chunk size 20000000000001: never reaches the recorder"; fi
other_client "[c6] chunk size 20000000000001"
# the same with the head sent first (already forwarded when the size line comes, 150 ms later)
b0=$(rec_bytes)
l0=$(rec_lines)
seg1='POST /c6-3b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'
seg2='20000000000001\r\nhello'
cl "$PX" --eof --timeout 2 --gap 150 "$seg1" "$seg2"
c6_reqs=$(rec_new_reqs "$l0")
c6_detail="sent: $seg1 then (150 ms later) $seg2; client got: $(oneline "$OUT"); recorder got: '$(rec_new_bytes "$b0")'; parsed: $(oneline "$c6_reqs")"
if [[ $ST == 400 ]] || { [[ $ST == none ]] && closed; }; then ok "[c6] chunk size 20000000000001 after the head: client gets 400 or a closed connection ($ST, $ENDW)"; else
    bad "[c6] chunk size 20000000000001 after the head: client gets 400 or a closed connection" "$c6_detail"
fi
if tail -c +$((b0 + 1)) "$RDIR/all.raw" | grep -qaF 20000000000001; then
    bad "[c6] chunk size 20000000000001 after the head: never reaches the recorder" "$c6_detail"
else ok "[c6] chunk size 20000000000001 after the head: never reaches the recorder"; fi
c6_conn=$(conn_of "$(grep ' POST /c6-3b ' <<<"$c6_reqs" || true)")
other_client "[c6] chunk size 20000000000001 after the head"
if [[ -n $c6_conn && $B_CONN == "$c6_conn" ]]; then
    bad "[c6] chunk size 20000000000001 after the head: the upstream connection is not reused" "$c6_detail; B went over recorder conn $B_CONN too"
else ok "[c6] chunk size 20000000000001 after the head: the upstream connection is not reused (request on conn ${c6_conn:-none}, B on ${B_CONN:-?})"; fi

if [[ -n ${PXP[limits]:-} ]]; then
    PX=${PXP[limits]}
    reject c6 413 "max_body_size=100, Content-Length 101" -- "POST /c6-4 HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 101\\r\\n\\r\\n$(printf 'x%.0s' {1..101})"
    accept_req c6 "max_body_size=100, Content-Length 100" "POST /c6-5 HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 100\\r\\n\\r\\n$(printf 'y%.0s' {1..100})"
    l0=$(rec_lines)
    b0=$(rec_bytes)
    seg1="POST /c6-6 HTTP/1.1\\r\\nHost: a\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n3c\\r\\n$(printf 'z%.0s' {1..60})\\r\\n"
    seg2="3c\\r\\n$(printf 'w%.0s' {1..60})\\r\\n0\\r\\n\\r\\n"
    cl "$PX" --eof --timeout 3 --gap 150 "$seg1" "$seg2"
    c6_reqs=$(rec_new_reqs "$l0")
    c6_detail="sent: $seg1 then (150 ms later) $seg2; client got: $(oneline "$OUT"); recorder got: '$(rec_new_bytes "$b0")'; parsed: $(oneline "$c6_reqs")"
    if [[ $ST == 413 ]] || { [[ $ST == none ]] && closed; }; then ok "[c6] max_body_size=100, chunked body of 120: 413 or a closed connection ($ST, $ENDW)"; else
        bad "[c6] max_body_size=100, chunked body of 120: 413 or a closed connection" "$c6_detail"
    fi
    if [[ $ST == 413 ]]; then verdict "[c6] max_body_size=100, chunked 120: connection closed after 413" "$c6_detail" closed; fi
    c6_conn=$(conn_of "$(grep ' POST /c6-6 ' <<<"$c6_reqs" || true)")
    other_client "[c6] max_body_size=100, chunked 120" "$PX"
    if [[ -n $c6_conn && $B_CONN == "$c6_conn" ]]; then
        bad "[c6] max_body_size=100, chunked 120: the upstream connection is not reused" "$c6_detail; B went over recorder conn $B_CONN too"
    else ok "[c6] max_body_size=100, chunked 120: the upstream connection is not reused (chunked on conn ${c6_conn:-none}, B on ${B_CONN:-?})"; fi
    PX=${PXP[main]}
else
    bad "[c6] max_body_size = 100" "proxy not started: ${PXWHY[limits]:-?}"
fi

# ================================================================ [x] other RFC 9112 rejections
reject x 400 "HTTP/1.1 without Host" -- 'GET /x HTTP/1.1\r\nX-A: b\r\n\r\n'
reject x 400 "two Host lines" -- 'GET /x HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n'
reject x 400 "whitespace between field name and colon" -- 'GET /x HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n'
reject x 400 "whitespace before the colon of Content-Length" -- 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello'
reject x 400 "obs-fold (SP)" -- 'GET /x HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n'
reject x 400 "obs-fold (HTAB)" -- 'GET /x HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n'
reject x 400 "bare CR in a value" -- 'GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n'
reject x 400 "NUL in a value" -- 'GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n'
for v in '+5' '-1' '0x5' '' '5 5'; do
    reject x 400 "Content-Length '$v'" -- "POST /x HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: $v\\r\\n\\r\\nhello"
done
reject x 400 "request line with two spaces" -- 'GET  /x HTTP/1.1\r\nHost: a\r\n\r\n'

# ============================================ [x] a request refused for its own bytes costs no backend
# The head is checked and the first body bytes too before a backend is chosen: the pooled upstream
# connection that the previous request used is neither taken nor closed by a refused one.
for refused in 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n' \
    'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n'; do
    warm
    reject x 400 "broken chunk framing in the first bytes" -- "$refused"
    verdict "[x] broken chunk framing in the first bytes: the pooled upstream connection is kept" \
        "warm request on recorder conn $WARM_CONN, the next client's on $B_CONN" test "$B_CONN" == "$WARM_CONN"
done

# ================================================================ whole-run invariants
verdict "[all] the recorder never parsed a smuggled request" "$(grep smuggled "$RDIR/requests.log" || true)" \
    nogrep smuggled "$RDIR/requests.log"
bad_heads=$(grep -E 'bare_lf=[1-9]|cl_lines=[2-9]|te_lines=[2-9]|cl_lines=[1-9][0-9]* te_lines=[1-9]' "$RDIR/requests.log" || true)
verdict "[all] no request head with a bare LF or two framing headers reached the recorder" "$bad_heads" test -z "$bad_heads"

checks_summary
