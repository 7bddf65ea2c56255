#!/usr/bin/env bash
# t_health: TCP health checks. A dead backend (nothing listens) is dropped, a killed one
# is dropped within ~1 s, none healthy gives 502 "no healthy upstream", a restarted
# backend rejoins within ~1 s.
set -euo pipefail
PORT_BASE=20100
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

# frequency is 200ms with rise=fall=1, so one interval is 0.2 s; allow some slack for
# a loaded machine but far less than a default 5 s interval.
WINDOW=${E2E_HEALTH_WINDOW:-1.5}

alloc_port PA
alloc_port PB
alloc_port PDEAD
alloc_port PX
start_origin A "$PA"
start_origin B "$PB"
port_listening "$PDEAD" && fail "port $PDEAD should be dead"
write_ini "$E2E_TMP/rh.ini" "$PX" "$PA $PB $PDEAD"
start_proxy "$E2E_TMP/rh.ini"
sleep 1

# 20 requests: all 200, exactly 10 per live backend (round robin over the healthy set)
na=0 nb=0 seq=""
for i in $(seq 1 20); do
    req "http://127.0.0.1:$PX/"
    assert_status 200 "request $i with a dead backend in the pool"
    case $BACKEND in
        A) na=$((na + 1)) ;;
        B) nb=$((nb + 1)) ;;
        *) fail "request $i: unexpected X-Backend '$BACKEND'" ;;
    esac
    seq+=$BACKEND
done
[[ $na == 10 && $nb == 10 ]] || fail "expected 10 A and 10 B, got A=$na B=$nb ($seq)"
pass "dead backend skipped; 20 requests split 10/10: $seq"

# all_to BACKEND N: the next N requests are all 200 from BACKEND
all_to() {
    local want=$1 n=$2 i
    for ((i = 0; i < n; i++)); do
        req "http://127.0.0.1:$PX/"
        [[ $STATUS == 200 && $BACKEND == "$want" ]] || return 1
    done
}
# all_502 N: the next N requests are 502 with "no healthy upstream"
all_502() {
    local n=$1 i
    for ((i = 0; i < n; i++)); do
        req "http://127.0.0.1:$PX/"
        [[ $STATUS == 502 && $BODY == *"no healthy upstream"* ]] || return 1
    done
}

# kill B
stop_origin B
t0=$(now_ms)
wait_until "$WINDOW" all_to A 4 || fail "after killing B, requests still not all 200 from A (last: $STATUS from '$BACKEND')"
pass "B dropped after $(($(now_ms) - t0)) ms"
all_to A 10 || fail "after B was dropped: got $STATUS from '$BACKEND'"
pass "10 more requests all to A"

# kill A too
stop_origin A
t0=$(now_ms)
wait_until "$WINDOW" all_502 2 || fail "with no backend alive: expected 502 'no healthy upstream', got $STATUS: $BODY"
pass "no healthy upstream after $(($(now_ms) - t0)) ms"
all_502 5 || fail "with no backend alive: got $STATUS: $BODY"
pass "502 'no healthy upstream' is stable"

# restart A
start_origin A "$PA"
t0=$(now_ms)
wait_until "$WINDOW" all_to A 2 || fail "A restarted but requests still fail (last: $STATUS '$BODY')"
pass "A rejoined after $(($(now_ms) - t0)) ms"
all_to A 10 || fail "after A rejoined: got $STATUS from '$BACKEND'"
pass "10 more requests all to A"

# restart B: back to strict alternation between A and B
_seen_b() { req "http://127.0.0.1:$PX/"; [[ $STATUS == 200 && $BACKEND == B ]]; }
start_origin B "$PB"
wait_until "$WINDOW" _seen_b || fail "B restarted but never chosen (last: $STATUS from '$BACKEND')"
na=0 nb=0
for i in $(seq 1 10); do
    req "http://127.0.0.1:$PX/"
    assert_status 200 "request $i after B rejoined"
    case $BACKEND in A) na=$((na + 1)) ;; B) nb=$((nb + 1)) ;; esac
done
[[ $na == 5 && $nb == 5 ]] || fail "after both rejoined expected 5 A and 5 B, got A=$na B=$nb"
pass "B rejoined; 10 requests split 5/5"
