#!/usr/bin/env bash
# t_churn: a deploy's worth of churn. One of three backends is killed (SIGKILL) and restarted every
# 2 s while wrk drives the proxy. With passive checks and retries on (the defaults) no request may
# fail: requests caught on the dying backend go again elsewhere (GET is idempotent) and the first
# failure takes it out at once. The same run with passive checks and retries off shows what they
# save (reported, not asserted: it depends on timing).
#   E2E_CHURN_SECONDS   length of the run with them on (default 8; the README's figures use 20)
#   E2E_CHURN_OFF_SECONDS  length of the comparison run (default 4; 0 skips it)
set -euo pipefail
PORT_BASE=22600
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

command -v wrk >/dev/null || fail "wrk is not installed (apt-get install wrk)"
ON_S=${E2E_CHURN_SECONDS:-8}
OFF_S=${E2E_CHURN_OFF_SECONDS:-4}

alloc_port P1
alloc_port P2
alloc_port P3
PORTS=("$P1" "$P2" "$P3")
NAMES=(A B C)
for i in 0 1 2; do start_origin "${NAMES[$i]}" "${PORTS[$i]}"; done

# churn SECONDS MIN_KILLS: every 2 s kill the next backend with SIGKILL and restart it 1 s later, for
# SECONDS and at least MIN_KILLS kills (a loaded machine slows the loop down: it then runs longer
# rather than killing less)
churn() {
    local end=$(($(now_ms) + $1 * 1000)) min=$2 k=0 i
    sleep 1
    while (($(now_ms) + 2000 <= end || k < min)); do
        i=$((k % 3))
        kill -KILL "${ORIGIN_PID[${NAMES[$i]}]}"
        wait_exit "${ORIGIN_PID[${NAMES[$i]}]}" 5 || fail "origin ${NAMES[$i]} survived SIGKILL"
        wait_port_closed "${PORTS[$i]}" 5 || fail "port ${PORTS[$i]} still listening after SIGKILL"
        sleep 1
        start_origin "${NAMES[$i]}" "${PORTS[$i]}"
        sleep 1
        k=$((k + 1))
    done
    KILLS=$k
}

# run NAME SECONDS MIN_KILLS INI: wrk through a proxy on INI while churn runs (wrk stops when the
# churn is over: SIGINT makes it print its totals); sets FAILED, TOTAL, WOUT
run() {
    local name=$1 secs=$2 min_kills=$3 ini=$4
    start_proxy "$ini" "proxy-$name"
    timeout $((secs + 120)) wrk -t2 -c16 -d"$((secs + 90))s" --timeout 5s "http://127.0.0.1:$PROXY_PORT/" \
        >"$E2E_TMP/wrk-$name.out" 2>&1 &
    local wrk_pid=$!
    E2E_PIDS+=("$wrk_pid")
    churn "$secs" "$min_kills"
    kill -INT "$wrk_pid"
    wait_exit "$wrk_pid" 30 || fail "wrk did not finish"
    WOUT=$(cat "$E2E_TMP/wrk-$name.out")
    sed 's/^/# /' <<<"$WOUT"
    TOTAL=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$WOUT")
    assert_match "$TOTAL" '^[0-9]+$' "wrk request count ($name)"
    local non2xx sock
    non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' <<<"$WOUT")
    sock=$(sed -n 's/^ *Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' <<<"$WOUT")
    FAILED=$((${non2xx:-0} + $(awk '{ print $1 + $2 + $3 + $4 }' <<<"${sock:-0 0 0 0}")))
    stop_pid "$PROXY_PID" TERM 8
    assert_eq "$EXIT_STATUS" 0 "proxy ($name) exit status on SIGTERM"
    RETRIES=$(sed -n 's/.*retries: \([0-9]*\) sent, \([0-9]*\) refused.*/\1 sent, \2 refused by the budget/p' "$PROXY_LOG")
}

alloc_port PX
INI_HC_FREQUENCY=200ms INI_HC_TIMEOUT=100ms write_ini "$E2E_TMP/on.ini" "$PX" "$P1 $P2 $P3"
run on "$ON_S" 3 "$E2E_TMP/on.ini"
on_failed=$FAILED on_total=$TOTAL on_kills=$KILLS on_retries=${RETRIES:-0 sent}
passive_downs=$(log_count "$PROXY_LOG" "down: .*while proxying")
log "churn with passive checks and retries on: $on_total requests, $on_failed failed, $on_kills kills, retries $on_retries, $passive_downs passive take-downs"
assert_eq "$on_failed" 0 "failed requests (non-2xx or socket errors) with passive checks and retries on"
assert_ge "$on_kills" 3 "backends killed during the run"
assert_ge "$passive_downs" 1 "backends taken out by passive checks before their next probe"
pass "churn for ${ON_S}s, $on_kills kills: $on_total requests, 0 failed (retries: $on_retries; $passive_downs passive take-downs)"

if ((OFF_S > 0)); then
    alloc_port PX2
    INI_HC_FREQUENCY=200ms INI_HC_TIMEOUT=100ms INI_HC_EXTRA="passive = false" \
        write_ini "$E2E_TMP/off.ini" "$PX2" "$P1 $P2 $P3" "retries = 0"
    run off "$OFF_S" 2 "$E2E_TMP/off.ini"
    log "churn with passive checks and retries off: $TOTAL requests, $FAILED failed, $KILLS kills"
    pass "comparison: with passive checks and retries off, $FAILED of $TOTAL requests failed in ${OFF_S}s ($KILLS kills)"
fi
