#!/usr/bin/env bash
# t_bench: `scripts/bench -d 1` (the README's benchmark) runs and reports both scenarios with
# requests served and no errors. Fixed ports 19081-19083 and 19188: skipped when they are busy.
set -euo pipefail
PORT_BASE=21200
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

for p in 19081 19082 19083 19188; do
    if port_listening "$p"; then
        echo "SKIP: port $p is in use, scripts/bench cannot run here"
        exit 77
    fi
done
root=$(cd "$E2E_DIR/../.." && pwd)
out=$(timeout 120 "$root/scripts/bench" -d 1 -c 16 2>"$E2E_TMP/bench.err") || {
    cat "$E2E_TMP/bench.err" >&2
    fail "scripts/bench -d 1 failed"
}
log "$(printf '%s\n' "$out")"
for s in keepalive close; do
    row=$(awk -v s="$s" '$1 == s' <<<"$out")
    [[ -n $row ]] || fail "no $s row in: $out"
    read -r _ rps _ _ errors cpu <<<"$row"
    assert_ge "${rps%.*}" 100 "$s: requests/s"
    assert_eq "$errors" 0 "$s: errors"
    [[ $cpu =~ ^[0-9]+\.[0-9]+$ ]] || fail "$s: cpu-us/req not a number: $cpu"
done
pass "scripts/bench reports keepalive and close with no errors"
