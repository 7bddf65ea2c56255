#!/usr/bin/env bash
# t_demo: the README's first command, `scripts/demo --once`, prints ten 200s that alternate between
# backends A and B (the dead 127.0.0.1:343 in etc/demo.ini is skipped) and leaves nothing running.
# The demo takes its ports from the environment: this scenario's own.
set -euo pipefail
PORT_BASE=21100
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

alloc_port PX
alloc_port PM
alloc_port PA
alloc_port PB
export DEMO_PORT=$PX DEMO_ADMIN_PORT=$PM DEMO_A_PORT=$PA DEMO_B_PORT=$PB
root=$(cd "$E2E_DIR/../.." && pwd)
out=$(timeout 120 "$root/scripts/demo" --once 2>"$E2E_TMP/demo.err") || {
    cat "$E2E_TMP/demo.err" >&2
    fail "scripts/demo --once failed"
}
lines=$(grep -c '^200 from backend [AB]$' <<<"$out" || true)
assert_eq "$lines" "10" "ten 200s from A or B"
seq=$(grep '^200 from backend' <<<"$out" | awk '{printf "%s", $4}')
for ((i = 1; i < ${#seq}; i++)); do
    [[ ${seq:i:1} != "${seq:i-1:1}" ]] || fail "demo responses do not alternate: $seq"
done
assert_match "$out" 'roundhouse_requests_total\{backend="127.0.0.1:[0-9]+",name="127.0.0.1:[0-9]+",code="2xx"\} 5' \
    "the demo shows the admin listener's request counters"
for p in "$PX" "$PM" "$PA" "$PB"; do
    wait_until 5 _not_listening "$p" || fail "the demo left port $p listening"
done
pass "scripts/demo --once: $seq"
