#!/usr/bin/env bash
# t_demo: the README's first command, `scripts/demo --once`, prints ten 200s that alternate between
# backends A and B (the dead 127.0.0.1:343 in etc/demo.ini is skipped) and leaves nothing running.
# The demo uses fixed ports (6188, 8081, 8082): skipped when something already listens there.
set -euo pipefail
PORT_BASE=21100
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

for p in 6188 8081 8082; do
    if port_listening "$p"; then
        echo "SKIP: port $p is in use, the demo cannot run here"
        exit 77
    fi
done
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
for p in 6188 8081 8082; do
    wait_until 5 _not_listening "$p" || fail "the demo left port $p listening"
done
pass "scripts/demo --once: $seq"
