#!/usr/bin/env bash
# t_guard: behaviour that the proxy's answers alone do not show.
#  1. [timeouts] idle: a keep-alive client that sits after a response is closed after about idle
#     (not before, and not never); one that started a new head is under client_header instead (408).
#  2. [upstream] max_iterations: with 1, a selection that looks at a down backend answers 502
#     "no healthy upstream" instead of looking further (round robin over A and a down backend,
#     one worker: exactly every other request).
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

INI_IDLE=1s INI_CLIENT_HEADER=3s write_ini "$E2E_TMP/idle.ini" "$PX_IDLE" "$PA"
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
# (3 s from when it arrived), and the connection is not closed at idle = 1s
out=$(raw "$PX_IDLE" --count 2 --timeout 7 --gap 500 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' \
    'GET / HTTP/1.1\r\nHost: x\r\n')
assert_match "$out" 'RESPONSE 200 backend=A .*RESPONSE 408 backend=- ' \
    "idle: a started head is timed by client_header (408), not closed as idle: $(tr '\n' '|' <<<"$out")"
ms=$(end_field elapsed_ms "$out")
assert_ge "$ms" 3000 "idle: the 408 came after client_header = 3s from the partial head ($out)"
pass "a partial head after a response gets 408 after $ms ms (client_header 3s), not the idle close"

# ---------------------------------------------------------------- 3. down backend never tried

# one worker, A and a dead backend (health check tcp every 200 ms, fall = 1), default max_iterations
INI_THREADS=1 write_ini "$E2E_TMP/rr.ini" "$PX_RR" "$PA $PDEAD"
start_proxy "$E2E_TMP/rr.ini" proxy-rr
RR_LOG=$PROXY_LOG
# ... and the same with max_iterations = 1
INI_THREADS=1 write_ini "$E2E_TMP/one.ini" "$PX_ONE" "$PA $PDEAD" "max_iterations = 1"
start_proxy "$E2E_TMP/one.ini" proxy-one
ONE_LOG=$PROXY_LOG

down_line="backend 127.0.0.1:$PDEAD down"
_marked_down() { [[ $(log_count "$1" "$down_line") -ge 1 ]]; }
wait_until 3 _marked_down "$RR_LOG" || fail "dead backend :$PDEAD not marked down within 3 s (proxy-rr)"
wait_until 3 _marked_down "$ONE_LOG" || fail "dead backend :$PDEAD not marked down within 3 s (proxy-one)"
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

# One worker, so one counter ticked only by these requests: with max_iterations = 1 every other
# selection looks only at the down backend and answers 502 at once; the others get A.
seq=""
n502=0 n200=0
for i in $(seq 1 10); do
    req "http://127.0.0.1:$PX_ONE/"
    case $STATUS in
        200)
            assert_eq "$BACKEND" A "proxy-one request $i: X-Backend"
            n200=$((n200 + 1))
            seq+=A
            ;;
        502)
            assert_contains "$BODY" "no healthy upstream" "proxy-one request $i: 502 body"
            n502=$((n502 + 1))
            seq+=x
            ;;
        *) fail "proxy-one request $i: expected 200 or 502, got $STATUS ($BODY)" ;;
    esac
done
[[ $n200 == 5 && $n502 == 5 && ($seq == AxAxAxAxAx || $seq == xAxAxAxAxA) ]] ||
    fail "max_iterations = 1 with A and a down backend: expected 200 and 502 'no healthy upstream' to alternate (5 each), got $seq (A = 200, x = 502)"
after=$(tail -n +"$((mark_one + 1))" "$ONE_LOG")
n=$(grep -cE -- "$fail_re" <<<"$after" || true)
[[ $n == 0 ]] || fail "proxy-one tried the backend marked down: $(grep -E -- "$fail_re" <<<"$after" | head -n 3)"
pass "max_iterations = 1: 200 and 502 'no healthy upstream' alternate ($seq); default (proxy-rr): all 20 were 200"
