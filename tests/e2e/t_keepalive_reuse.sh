#!/usr/bin/env bash
# t_keepalive_reuse: the proxy reuses upstream connections (the origins see few
# connections for many requests), and never uses a pooled upstream connection that the
# origin has closed while it was idle.
set -euo pipefail
PORT_BASE=20400
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

start_pair_and_proxy # origins A on $PA and B on $PB, the proxy on $PX

# 200 sequential requests on one client connection (curl URL glob)
out=$("${CURL[@]}" --max-time 60 -w ' %{http_code}\n' "http://127.0.0.1:$PX/?i=[1-200]")
n200=$(grep -c ' 200$' <<<"$out" || true)
assert_eq "$n200" 200 "200 sequential requests through the proxy all 200"
ra=$(origin_stat "$PA" requests)
rb=$(origin_stat "$PB" requests)
aa=$(origin_stat "$PA" accepts)
ab=$(origin_stat "$PB" accepts)
log "sequential: A requests=$ra accepts=$aa, B requests=$rb accepts=$ab"
assert_eq "$((ra + rb))" 200 "requests seen by the origins"
assert_le "$aa" 10 "upstream connections to A for 200 sequential requests"
assert_le "$ab" 10 "upstream connections to B for 200 sequential requests"
pass "200 sequential requests used $aa+$ab upstream connections"

# 200 more, one client connection each
for i in $(seq 1 50); do
    req "http://127.0.0.1:$PX/"
    assert_status 200 "separate connection request $i"
done
aa=$(origin_stat "$PA" accepts)
ab=$(origin_stat "$PB" accepts)
assert_le "$aa" 10 "upstream connections to A after 50 more client connections"
assert_le "$ab" 10 "upstream connections to B after 50 more client connections"
pass "50 separate client connections reused upstream connections ($aa+$ab total)"

# concurrency: wrk, 4 connections, 1 s
if command -v wrk >/dev/null; then
    wout=$(timeout 20 wrk -t2 -c4 -d1s --timeout 5s "http://127.0.0.1:$PX/" 2>&1) || fail "wrk failed: $wout"
    log "$wout"
    total=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$wout")
    assert_match "$total" '^[0-9]+$' "wrk request count"
    assert_not_contains "$wout" "Socket errors" "wrk socket errors"
    assert_not_contains "$wout" "Non-2xx" "wrk non-2xx responses"
    aa=$(origin_stat "$PA" accepts)
    ab=$(origin_stat "$PB" accepts)
    log "after wrk ($total requests): A accepts=$aa, B accepts=$ab"
    assert_ge "$total" 500 "wrk requests in 1 s"
    assert_le "$aa" 16 "upstream connections to A after $total concurrent requests"
    assert_le "$ab" 16 "upstream connections to B after $total concurrent requests"
    pass "$total concurrent requests over 4 client connections: upstream accepts A=$aa B=$ab"
else
    log "wrk not installed: concurrency part skipped"
fi

# origins that close idle connections after 300 ms: pooled connections go stale
alloc_port PC
alloc_port PD
alloc_port PY
start_origin C "$PC" --idle-close-ms 300
start_origin D "$PD" --idle-close-ms 300
write_ini "$E2E_TMP/rh2.ini" "$PY" "$PC $PD"
start_proxy "$E2E_TMP/rh2.ini" proxy2
# the origins have closed every connection they held (none ESTABLISHED on their ports): the pooled ones are stale
_origins_closed_idle() { ! { _port_states "$PC"; _port_states "$PD"; } | grep -qx 01; }
for round in 1 2 3 4; do
    for i in $(seq 1 10); do
        req "http://127.0.0.1:$PY/"
        assert_status 200 "round $round request $i (origins close idle connections after 300 ms)"
    done
    # also on one client connection
    out=$("${CURL[@]}" -w ' %{http_code}\n' "http://127.0.0.1:$PY/?i=[1-6]")
    assert_eq "$(grep -c ' 200$' <<<"$out" || true)" 6 "round $round keep-alive burst: $out"
    wait_until 0.7 _origins_closed_idle || true # (at most the 0.7 s this used to sleep)
done
ac=$(origin_stat "$PC" accepts)
ad=$(origin_stat "$PD" accepts)
assert_ge "$((ac + ad))" 8 "origins closed idle connections, so the proxy had to reconnect"
pass "stale pooled connections never used (upstream accepts C=$ac D=$ad over 4 rounds)"
