#!/usr/bin/env bash
# t_wrk: load through the proxy (wrk -t2 -c32 -d3s) to two backends: no socket errors,
# no non-2xx responses, both backends busy, every response accounted for by an origin.
set -euo pipefail
PORT_BASE=20900
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

command -v wrk >/dev/null || fail "wrk is not installed (apt-get install wrk)"

start_pair_and_proxy # origins A on $PA and B on $PB, the proxy on $PX

wout=$(timeout 30 wrk -t2 -c32 -d3s --timeout 5s "http://127.0.0.1:$PX/" 2>&1) || fail "wrk failed: $wout"
sed 's/^/# /' <<<"$wout"
total=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$wout")
assert_match "$total" '^[0-9]+$' "wrk request count"
assert_not_contains "$wout" "Socket errors" "wrk reported socket errors"
assert_not_contains "$wout" "Non-2xx" "wrk reported non-2xx responses"
assert_ge "$total" 1000 "requests completed in 3 s"
is_alive "$PROXY_PID" || fail "proxy died under load"

ra=$(origin_stat "$PA" requests)
rb=$(origin_stat "$PB" requests)
log "wrk: $total requests; origin A served $ra, B served $rb"
assert_ge "$((ra + rb))" "$total" "origins served at least as many requests as wrk counted"
assert_le "$((ra + rb))" "$((total + 64))" "origins served no more than wrk's requests plus the in-flight ones"
diff=$((ra > rb ? ra - rb : rb - ra))
assert_le "$diff" "$(((ra + rb) / 10 + 64))" "round robin balance under load (A=$ra B=$rb)"
pass "$total requests, no errors, A=$ra B=$rb"

# the proxy is still fine afterwards
req "http://127.0.0.1:$PX/"
assert_status 200 "request after the load"
pass "proxy healthy after load"
