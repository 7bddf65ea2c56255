#!/usr/bin/env bash
# t_alternation: round robin across two healthy backends alternates strictly, both for
# separate client connections and for requests on one keep-alive client connection.
set -euo pipefail
PORT_BASE=20000
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

start_pair_and_proxy # origins A on $PA and B on $PB, the proxy on $PX

# alternates SEQ: every backend differs from the one before, and both appear
alternates() {
    local s=$1 i
    [[ $s == *A* && $s == *B* ]] || return 1
    for ((i = 1; i < ${#s}; i++)); do
        [[ ${s:i:1} != "${s:i-1:1}" ]] || return 1
    done
}

# 10 sequential requests, one connection each
seq=""
for i in $(seq 1 10); do
    req "http://127.0.0.1:$PX/"
    assert_status 200 "request $i"
    assert_match "$BACKEND" '^[AB]$' "request $i: X-Backend"
    assert_eq "$BODY" "$BACKEND" "request $i: body names the backend"
    seq+=$BACKEND
done
alternates "$seq" || fail "backends do not alternate strictly: $seq"
pass "10 separate connections alternate: $seq"

# 10 requests on one keep-alive client connection (curl reuses it)
# each body is "NAME\n", followed by "CODE CONNECTS\n" from -w: paste joins the two lines
out=$("${CURL[@]}" -w '%{http_code} %{num_connects}\n' "http://127.0.0.1:$PX/?i=[1-10]" | paste -d' ' - -)
codes=$(awk '{print $2}' <<<"$out" | sort -u | tr -d '\n')
assert_eq "$codes" "200" "keep-alive requests all 200"
connects=$(awk '{s += $3} END {print s}' <<<"$out")
assert_eq "$connects" "1" "curl used one client connection for 10 requests"
seq=$(awk '{printf "%s", $1}' <<<"$out")
assert_eq "${#seq}" "10" "10 bodies"
alternates "$seq" || fail "backends do not alternate on one client connection: $seq"
pass "10 requests on one client connection alternate: $seq"
