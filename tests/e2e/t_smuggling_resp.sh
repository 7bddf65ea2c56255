#!/usr/bin/env bash
# t_smuggling_resp: the response side of request smuggling. A backend (recorder.py answering
# /fixed/NAME with the exact bytes of a file) sends malformed or hop-by-hop-laden responses through
# the real proxy (1 worker, 1 backend, keepalive 64, so the upstream connection is pooled):
#   - bare-LF line ends reach the client rebuilt with CRLF and an HTTP/1.1 status line;
#   - Content-Length with Transfer-Encoding, two different Content-Lengths, Transfer-Encoding in an
#     HTTP/1.0 response: the client gets 502 and that upstream connection is not used again (the
#     next request arrives on another recorder connection);
#   - Connection, the headers it names and Keep-Alive never reach the client, in a final response
#     or in a 100 Continue.
# Each check prints "ok - ..." or "not ok - ..."; the scenario fails at the end if any failed.
set -euo pipefail
PORT_BASE=21900
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

source "$E2E_DIR/recorder.sh"

# ---------------------------------------------------------------- the fixed responses
FIX=$E2E_TMP/fixed
mkdir -p "$FIX"
printf 'HTTP/1.1 200 OK\nContent-Length: 3\nX-A: 1\n\nabc' >"$FIX/lf"
printf 'HTTP/1.0 200 OK\nContent-Length: 3\nX-A: 1\n\nxyz' >"$FIX/lf10"
printf 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' >"$FIX/clte"
printf 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!' >"$FIX/cl2"
printf 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nhello\r\n0\r\n\r\n' >"$FIX/te10"
printf 'HTTP/1.1 200 OK\r\nConnection: foo\r\nFoo: 1\r\nKeep-Alive: timeout=5\r\nX-End: 1\r\nContent-Length: 2\r\n\r\nok' >"$FIX/hop"
printf 'HTTP/1.1 100 Continue\r\nConnection: foo\r\nFoo: 1\r\nKeep-Alive: timeout=5\r\n\r\n' >"$FIX/cont.pre"
printf 'HTTP/1.1 200 OK\r\nX-End: 1\r\nContent-Length: 2\r\n\r\nok' >"$FIX/cont"

# ---------------------------------------------------------------- recorder, driver, proxy
start_recorder --fixed "$FIX"
start_driver

alloc_port PX
INI_THREADS=1 INI_HC_TYPE=none INI_KEEPALIVE=64 write_ini "$E2E_TMP/rh.ini" "$PX" "$RP"
start_proxy "$E2E_TMP/rh.ini"

# cl [client args] SEGMENT...: one client connection to the proxy; sets OUT, ST, RBODY,
# CONN (the recorder connection that answered, from X-Conn), RAW (file with every byte received)
OUT="" ST="" RBODY="" CONN="" RAW=""
NRAW=0
cl() {
    NRAW=$((NRAW + 1))
    RAW=$E2E_TMP/client-$NRAW.raw
    drv client --port "$PX" --raw-out "$RAW" "$@"
    OUT=${DRV_OUT%$'\n'}
    ST=$(sed -n 's/^RESPONSE \([0-9]*\) .*/\1/p' <<<"$OUT" | head -n1)
    ST=${ST:-none}
    RBODY=$(sed -n 's/^RESPONSE [0-9]* conn=[^ ]* len=[0-9]* body=//p' <<<"$OUT" | head -n1)
    CONN=$(sed -n 's/^RESPONSE [0-9]* conn=\([^ ]*\) .*/\1/p' <<<"$OUT" | head -n1)
}
# all_heads FILE: every line of the capture up to the empty line that ends the final response's
# head (interim 1xx heads included)
all_heads() {
    awk '
        BEGIN { interim = 0 }
        NR == 1 || start { start = 0; interim = ($0 ~ /^HTTP\/1\.[01] 1[0-9][0-9]( |\r|$)/) }
        { print }
        /^\r?$/ { if (!interim) exit; start = 1 }
    ' "$1" 2>/dev/null
}

# crlf_only FILE: FILE is not empty and every line of it ends in CR (no bare LF)
crlf_only() { [[ -s $1 ]] && ! grep -qv $'\r$' "$1"; }
# no_hop FILE: no Foo or Keep-Alive line, no Connection line naming foo
no_hop() { [[ $(n_named "$1" 'foo|keep-alive') == 0 ]] && ! grep -qiE '^connection:.*foo' "$1"; }

# other_client TAG NOT_CONN: B's GET /b-N gets exactly its response, over a recorder connection
# other than NOT_CONN (when given)
BN=0
other_client() {
    local tag=$1 notconn=${2:-}
    BN=$((BN + 1))
    cl --timeout 3 "GET /b-$BN HTTP/1.1\r\nHost: b\r\n\r\n"
    if [[ $ST == 200 && $RBODY == "resp for GET /b-$BN\\n" ]]; then
        ok "$tag: then client B gets its own response (GET /b-$BN)"
    else
        bad "$tag: then client B gets its own response (GET /b-$BN)" "B got: $(oneline "$OUT")"
    fi
    if [[ -n $notconn ]]; then
        if [[ $CONN == "$notconn" ]]; then
            bad "$tag: that upstream connection is not reused" "B's request went over recorder connection $CONN, the one that sent the bad response"
        else ok "$tag: that upstream connection is not reused (bad response on conn $notconn, B on ${CONN:-?})"; fi
    fi
}
# conn_of_target TARGET: the recorder connection that read the last request for TARGET
conn_of_target() { grep " $1 " "$RDIR/requests.log" | tail -n1 | sed -n 's/^conn=\([0-9]*\) .*/\1/p'; }

# sanity, and a pooled connection
cl --timeout 3 'GET /hello HTTP/1.1\r\nHost: a\r\n\r\n'
[[ $ST == 200 && $RBODY == 'resp for GET /hello\n' ]] || fail "sanity GET /hello through the proxy: $OUT"
pass "sanity: GET /hello through the proxy"

# ---------------------------------------------------------------- bare LF in a response head
for f in lf lf10; do
    want_body=abc
    [[ $f == lf10 ]] && want_body=xyz
    cl --timeout 3 "GET /fixed/$f HTTP/1.1\r\nHost: a\r\n\r\n"
    H=$RAW.head
    all_heads "$RAW" >"$H"
    detail="backend sent '$(esc_file "$FIX/$f")'; client got '$(esc_file "$RAW")'"
    verdict "[r] bare-LF response ($f): client gets 200 with the body" "$detail" \
        test "$ST:$RBODY" == "200:$want_body"
    verdict "[r] bare-LF response ($f): every head line the client gets ends in CRLF" "$detail" \
        crlf_only "$H"
    verdict "[r] bare-LF response ($f): status line 'HTTP/1.1 200 ...'" "$detail" \
        test "$(head -n1 "$H" | cut -c1-13)" == "HTTP/1.1 200 "
    verdict "[r] bare-LF response ($f): 'X-A: 1' reaches the client as its own CRLF line" "$detail" \
        test "$(n_exact "$H" 'X-A: 1')" == 1
done
other_client "[r] after the bare-LF responses"

# ---------------------------------------------------------------- ambiguous response framing
for f in clte cl2 te10; do
    case $f in
    clte) what="Content-Length with Transfer-Encoding" ;;
    cl2) what="two different Content-Lengths" ;;
    te10) what="Transfer-Encoding: chunked in an HTTP/1.0 response" ;;
    esac
    cl --timeout 3 "GET /fixed/$f HTTP/1.1\r\nHost: a\r\n\r\n"
    fconn=$(conn_of_target "/fixed/$f")
    detail="backend (recorder conn ${fconn:-?}) sent '$(esc_file "$FIX/$f")'; client got '$(esc_file "$RAW")'"
    verdict "[r] response with $what: client gets 502" "$detail" test "$ST" == 502
    verdict "[r] response with $what: none of its body reaches the client" "$detail" \
        nogrep hello "$RAW"
    other_client "[r] response with $what" "$fconn"
done

# ---------------------------------------------------------------- hop-by-hop response headers
cl --timeout 3 'GET /fixed/hop HTTP/1.1\r\nHost: a\r\n\r\n'
H=$RAW.head
all_heads "$RAW" >"$H"
detail="backend sent '$(esc_file "$FIX/hop")'; client got '$(esc_file "$RAW")'"
verdict "[r] hop-by-hop response headers: client gets 200 'ok'" "$detail" test "$ST:$RBODY" == "200:ok"
verdict "[r] hop-by-hop response headers: no Foo, Keep-Alive or 'Connection: foo' line reaches the client" "$detail" \
    no_hop "$H"
verdict "[r] hop-by-hop response headers: the end-to-end X-End is kept" "$detail" \
    test "$(n_exact "$H" 'X-End: 1')" == 1

cl --timeout 3 --gap 300 'POST /fixed/cont HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n' 'hello'
H=$RAW.head
all_heads "$RAW" >"$H"
detail="backend sent '$(esc_file "$FIX/cont.pre")' then (after the body) '$(esc_file "$FIX/cont")'; client got '$(esc_file "$RAW")'"
verdict "[r] 100 Continue with hop-by-hop headers: client gets the 100 and then 200 'ok'" "$detail" \
    test "$(grep -c '^INFO 100$' <<<"$OUT" || true):$ST:$RBODY" == 1:200:ok
verdict "[r] 100 Continue with hop-by-hop headers: no Foo, Keep-Alive or 'Connection: foo' line reaches the client" "$detail" \
    no_hop "$H"
other_client "[r] after the hop-by-hop responses"

checks_summary
