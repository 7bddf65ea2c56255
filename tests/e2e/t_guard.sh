#!/usr/bin/env bash
# t_guard: behaviour that the proxy's answers alone do not show.
#  1. [timeouts] idle: a keep-alive client that sits after a response is closed after about idle
#     (not before, and not never); one that started a new head is under client_header instead (408).
#  2. [upstream] max_iterations: with 1, a selection that looks at a down backend answers 502
#     "no healthy upstream" instead of looking further. Consistent hashing keeps a down backend's
#     points on the ring (so its keys come back when it recovers): over A and a down backend, the
#     URIs whose first point is the down one get 502, the others A, each the same every time.
#     Round robin never looks at a down backend at all (the snapshot lists only live ones), so
#     max_iterations = 1 still sends everything to A.
#  3. round robin skips a backend marked down without even trying it: after the "down" line no
#     connect to it is attempted (no "upstream ...: connect" line in the log), although the retry on
#     the next backend would make every request succeed anyway.
set -euo pipefail
PORT_BASE=22100
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

alloc_port PA
alloc_port PDEAD
alloc_port PX_IDLE
alloc_port PX_RR
alloc_port PX_ONE
start_origin A "$PA"
port_listening "$PDEAD" && fail "port $PDEAD should be dead"

# ---------------------------------------------------------------- 1. idle timeout

INI_IDLE=1s INI_CLIENT_HEADER=2s write_ini "$E2E_TMP/idle.ini" "$PX_IDLE" "$PA"
start_proxy "$E2E_TMP/idle.ini" proxy-idle

# field NAME OUT: the value of NAME=... on the END line of rawclient's output
end_field() { sed -n "s/^END .*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2"; }

# one request on a keep-alive connection, then nothing: closed by the proxy after ~1 s
out=$(raw "$PX_IDLE" --count 2 --timeout 6 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
assert_match "$out" 'RESPONSE 200 backend=A ' "idle: the request is answered: $out"
assert_match "$out" 'END (closed|reset) responses=1 ' "idle: a keep-alive client that sits is closed by the proxy (idle = 1s; waited 6 s): $out"
ms=$(end_field elapsed_ms "$out")
assert_ge "$ms" 800 "idle: closed after about idle = 1s, not at once ($out)"
assert_le "$ms" 3000 "idle: closed within ~idle = 1s ($out)"
pass "idle keep-alive client closed after $ms ms (idle = 1s)"

# the idle time counts from the last response: three requests 700 ms apart (1.4 s in all) all answered
out=$(raw "$PX_IDLE" --count 3 --timeout 6 --gap 700 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' \
    'GET / HTTP/1.1\r\nHost: x\r\n\r\n' 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
assert_match "$out" 'END count responses=3 ' "idle: requests 700 ms apart on one connection (idle = 1s): $out"
pass "requests 700 ms apart keep the connection (idle restarts after each response)"

# a client that started its next head is not idle: the partial head gets a 408 after client_header
# (2 s from when it arrived), and the connection is not closed at idle = 1s
out=$(raw "$PX_IDLE" --count 2 --timeout 7 --gap 500 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' \
    'GET / HTTP/1.1\r\nHost: x\r\n')
assert_match "$out" 'RESPONSE 200 backend=A .*RESPONSE 408 backend=- ' \
    "idle: a started head is timed by client_header (408), not closed as idle: $(tr '\n' '|' <<<"$out")"
ms=$(end_field elapsed_ms "$out")
assert_ge "$ms" 2000 "idle: the 408 came after client_header = 2s from the partial head ($out)"
pass "a partial head after a response gets 408 after $ms ms (client_header 2s), not the idle close"

# ---------------------------------------------------------------- 3. down backend never tried

# one worker, A and a dead backend (health check tcp every 200 ms, fall = 1), default max_iterations
INI_THREADS=1 write_ini "$E2E_TMP/rr.ini" "$PX_RR" "$PA $PDEAD"
start_proxy "$E2E_TMP/rr.ini" proxy-rr
RR_LOG=$PROXY_LOG
# ... and consistent hashing with max_iterations = 1 (plus round robin with 1, in proxy-rr1)
alloc_port PX_RR1
INI_THREADS=1 INI_ALGORITHM=consistent_hash write_ini "$E2E_TMP/one.ini" "$PX_ONE" "$PA $PDEAD" \
    "max_iterations = 1" "hash_key = uri"
start_proxy "$E2E_TMP/one.ini" proxy-one
ONE_LOG=$PROXY_LOG
INI_THREADS=1 write_ini "$E2E_TMP/rr1.ini" "$PX_RR1" "$PA $PDEAD" "max_iterations = 1"
start_proxy "$E2E_TMP/rr1.ini" proxy-rr1
RR1_LOG=$PROXY_LOG

down_line="backend 127.0.0.1:$PDEAD down"
_marked_down() { [[ $(log_count "$1" "$down_line") -ge 1 ]]; }
wait_until 3 _marked_down "$RR_LOG" || fail "dead backend :$PDEAD not marked down within 3 s (proxy-rr)"
wait_until 3 _marked_down "$ONE_LOG" || fail "dead backend :$PDEAD not marked down within 3 s (proxy-one)"
wait_until 3 _marked_down "$RR1_LOG" || fail "dead backend :$PDEAD not marked down within 3 s (proxy-rr1)"
# the log lines that come after the down mark
mark_rr=$(wc -l <"$RR_LOG")
mark_one=$(wc -l <"$ONE_LOG")
# upstream failures (log_upstream_failure in src/conn.c: "upstream HOST:PORT: connect...: why") naming
# the dead backend; the log is rate-limited to one line a second per worker, and the first is always
# written, so one connect attempt is enough to show
fail_re="upstream 127\\.0\\.0\\.1:$PDEAD: "

seq=""
for i in $(seq 1 20); do
    req "http://127.0.0.1:$PX_RR/"
    assert_status 200 "proxy-rr request $i with the dead backend marked down"
    assert_eq "$BACKEND" A "proxy-rr request $i: X-Backend"
    seq+=$BACKEND
done
after=$(tail -n +"$((mark_rr + 1))" "$RR_LOG")
n=$(grep -cE -- "$fail_re" <<<"$after" || true)
[[ $n == 0 ]] || fail "round robin tried the backend marked down (a connect to :$PDEAD after '$down_line'): $(grep -E -- "$fail_re" <<<"$after" | head -n 3)"
pass "20 requests all 200 from A; no connect to the down backend :$PDEAD after it was marked down"

# ---------------------------------------------------------------- 2. max_iterations

# Consistent hashing, max_iterations = 1: each URI looks at its first point on the ring only. With
# A and the down backend about half the URIs start at the down one: those answer 502 at once, the
# others A, and a URI answers the same way every time.
n502=0 n200=0
for i in $(seq 1 20); do
    first=""
    for round in 1 2; do
        req "http://127.0.0.1:$PX_ONE/k$i"
        case $STATUS in
            200) assert_eq "$BACKEND" A "proxy-one /k$i: X-Backend"; got=A ;;
            502) assert_contains "$BODY" "no healthy upstream" "proxy-one /k$i: 502 body"; got=x ;;
            *) fail "proxy-one /k$i: expected 200 or 502, got $STATUS ($BODY)" ;;
        esac
        [[ -z $first || $first == "$got" ]] || fail "proxy-one /k$i: $first then $got: a key must land the same way each time"
        first=$got
    done
    if [[ $first == A ]]; then n200=$((n200 + 1)); else n502=$((n502 + 1)); fi
done
[[ $n200 -ge 2 && $n502 -ge 2 ]] ||
    fail "max_iterations = 1 with A and a down backend on the ring: expected some URIs 200 and some 502 'no healthy upstream', got $n200 x 200 and $n502 x 502"
# round robin with max_iterations = 1: the down backend is not a candidate, so all go to A
for i in $(seq 1 10); do
    req "http://127.0.0.1:$PX_RR1/"
    assert_status 200 "proxy-rr1 request $i (round robin, max_iterations = 1)"
    assert_eq "$BACKEND" A "proxy-rr1 request $i: X-Backend"
done
after=$(tail -n +"$((mark_one + 1))" "$ONE_LOG")
n=$(grep -cE -- "$fail_re" <<<"$after" || true)
[[ $n == 0 ]] || fail "proxy-one tried the backend marked down: $(grep -E -- "$fail_re" <<<"$after" | head -n 3)"
pass "max_iterations = 1: consistent hashing answers $n200 URIs from A and $n502 with 502 'no healthy upstream' (the same each time); round robin: all 10 from A; default (proxy-rr): all 20 were 200"
