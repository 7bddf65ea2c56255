#!/usr/bin/env bash
# t_bench: `scripts/bench -d 1` (the README's benchmark) runs and reports both scenarios with
# requests served and no errors; `scripts/bench --tls -d 1 -p roundhouse` reports its three TLS
# scenarios for roundhouse (backend handshakes match new backend connections, the edge resumes
# sessions). Fixed ports 19081-19083, 19441-19443 and 19186-19189: skipped when they are busy.
set -euo pipefail
PORT_BASE=21200
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

for p in 19081 19082 19083 19441 19442 19443 19186 19187 19188 19189; do
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

out=$(timeout 120 "$root/scripts/bench" --tls -d 1 -c 8 -p roundhouse 2>"$E2E_TMP/bench-tls.err") || {
    cat "$E2E_TMP/bench-tls.err" >&2
    fail "scripts/bench --tls -d 1 -p roundhouse failed"
}
log "$(printf '%s\n' "$out")"
for s in tls-upstream tls-edge tls-edge-close; do
    row=$(awk -v s="$s" '$1 == s && $2 == "roundhouse"' <<<"$out")
    [[ -n $row ]] || fail "no $s roundhouse row in: $out"
    read -r _ _ rps _ _ errors cpu _ _ be_conn be_full be_res cl_full cl_res _ <<<"$row"
    assert_ge "${rps%.*}" 100 "$s: requests/s"
    assert_eq "$errors" 0 "$s: errors"
    [[ $cpu =~ ^[0-9]+\.[0-9]+$ ]] || fail "$s: cpu-us/req not a number: $cpu"
    grep -q "^#   $s roundhouse r1: check ok" <<<"$out" || fail "$s: the pre-check through roundhouse failed: $out"
    case $s in
    tls-upstream) assert_eq "$((be_full + be_res))" "$be_conn" "$s: backend handshakes = new backend connections" ;;
    tls-edge) assert_ge "$cl_full" 8 "$s: full client handshakes (one per wrk connection)" ;;
    tls-edge-close) assert_ge "$cl_res" "$((cl_full + 1))" "$s: resumed client handshakes outnumber full ones" ;;
    esac
done
pass "scripts/bench --tls reports tls-upstream, tls-edge and tls-edge-close for roundhouse"
