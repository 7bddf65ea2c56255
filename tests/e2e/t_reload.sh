#!/usr/bin/env bash
# t_reload: live reconfiguration. Under wrk load (-t2 -c16) the proxy goes through 20 reloads, SIGHUP
# and POST /reload alternately, cycling through configs that add C, remove A and re-weight (3 and 0),
# never leaving no routable backend: generation 21, no socket error, no non-2xx, the added C served.
# A final config (only C, B weight=0) takes effect: every request goes to C, /status shows B draining
# and A gone. A broken file is refused (400 naming FILE:LINE, metrics last_reload_successful 0 and
# refused 1, logged "keeping the running configuration") while C keeps serving; the fixed file is
# applied on SIGHUP. A changed [server] listen is logged as needing a restart and the old port stays
# the only one listening.
set -euo pipefail
PORT_BASE=23600
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

command -v wrk >/dev/null || fail "wrk is not installed (apt-get install wrk)"

alloc_port PA
alloc_port PB
alloc_port PC
alloc_port PX
alloc_port PADM
alloc_port PX2 # part 4: the listen port a reload asks for (never opened)
start_origin A "$PA"
start_origin B "$PB"
start_origin C "$PC"
declare -A PORT_OF=([A]=$PA [B]=$PB [C]=$PC)

INI=$E2E_TMP/rh.ini
ADMIN=http://127.0.0.1:$PADM

# conf LISTEN_PORT SPEC...: write $INI (by rename, never half-written) with the backends SPEC
# (NAME or NAME:WEIGHT, e.g. "A:3" for "backend = 127.0.0.1:$PA weight=3") and the admin listener.
conf() {
    local listen=$1 s lines=()
    shift
    for s in "$@"; do
        if [[ $s == *:* ]]; then
            lines+=("backend = 127.0.0.1:${PORT_OF[${s%%:*}]} weight=${s#*:}")
        else
            lines+=("backend = 127.0.0.1:${PORT_OF[$s]}")
        fi
    done
    INI_EXTRA=$'[admin]\nlisten = 127.0.0.1:'"$PADM" write_ini "$INI.new" "$listen" "" "${lines[@]}"
    mv -f "$INI.new" "$INI"
}

# status_json / metrics: the admin pages (empty on failure: callers assert on the content)
status_json() { "${CURL[@]}" --max-time 5 "$ADMIN/status" 2>/dev/null || true; }
metrics() { "${CURL[@]}" --max-time 5 "$ADMIN/metrics" 2>/dev/null || true; }
# generation: the config generation /status reports
generation() { status_json | grep -o '"generation":[0-9]*' | head -n1 | cut -d: -f2; }
_generation_is() { [[ $(generation) == "$1" ]]; }
# metric NAME_WITH_LABELS: its value in /metrics (the sample line, not # HELP/# TYPE; empty if absent)
metric() { metrics | awk -v n="$1" '$1 == n { print $2; exit }'; }
_metric_is() { [[ $(metric "$1") == "$2" ]]; }
# responses N: N requests to the proxy made by one curl (one keep-alive connection), one
# "STATUS X-BACKEND" line each
responses() {
    local args=() i
    for ((i = 0; i < $1; i++)); do args+=(-o /dev/null "http://127.0.0.1:$PX/"); done
    "${CURL[@]}" -w '%{http_code} %header{x-backend}\n' "${args[@]}" 2>&1 || true
}

conf "$PX" A B
start_proxy "$INI"
wait_port "$PADM" 5 "$PROXY_PID" || fail "admin listener did not listen on $PADM within 5s"
assert_eq "$(generation)" 1 "generation at start"

# ---------------------------------------------------------------- 1. 20 reloads under wrk
# wrk runs until the reloads are over (SIGINT makes it print its totals); -d only caps it
timeout 40 wrk -t2 -c16 -d30s --timeout 5s "http://127.0.0.1:$PX/" >"$E2E_TMP/wrk.out" 2>&1 &
WRK_PID=$!
E2E_PIDS+=("$WRK_PID")
sleep 0.3 # wrk is connected and busy before the first reload

# each keeps at least one backend with a weight > 0; re-adding a backend that is still draining
# from the previous step is part of the exercise
CYCLE=("A B C" "B C" "A:3 B C" "A B:0 C" "A B" "A:0 B:3" "B:0 C")
t0=$(now_ms)
for i in $(seq 1 20); do
    # one reload every 250 ms (or as soon as the previous one is done, if it took longer)
    late=$((t0 + (i - 1) * 250 - $(now_ms)))
    if ((late > 0)); then sleep_ms "$late"; fi
    spec=${CYCLE[$(((i - 1) % ${#CYCLE[@]}))]}
    want=$((i + 1))
    # shellcheck disable=SC2086 # spec is a list of words
    conf "$PX" $spec
    if ((i % 2)); then
        kill -s HUP "$PROXY_PID"
        wait_until 5 _generation_is "$want" ||
            fail "reload $i (SIGHUP, backends $spec): /status generation is '$(generation)', expected $want"
    else
        out=$("${CURL[@]}" --max-time 10 -XPOST "$ADMIN/reload" 2>&1) || fail "reload $i: POST /reload failed: $out"
        assert_eq "$out" "reloaded: generation $want" "reload $i (POST /reload, backends $spec)"
    fi
    is_alive "$PROXY_PID" || fail "the proxy died at reload $i (backends $spec)"
done
reload_ms=$(($(now_ms) - t0))
is_alive "$WRK_PID" || fail "wrk ended before the 20 reloads did: $(cat "$E2E_TMP/wrk.out")"
sleep 0.2 # load on the config of the 20th reload too
kill -s INT "$WRK_PID"
wait_exit "$WRK_PID" 10 || fail "wrk did not stop within 10 s of SIGINT"
wout=$(cat "$E2E_TMP/wrk.out")
sed 's/^/# /' "$E2E_TMP/wrk.out"
total=$(sed -n 's/^[[:space:]]*\([0-9][0-9]*\) requests in .*/\1/p' <<<"$wout" | head -n1)
assert_match "$total" '^[0-9]+$' "wrk request count (\"N requests in\")"
assert_not_contains "$wout" "Socket errors" "wrk reported socket errors through the reloads"
assert_not_contains "$wout" "Non-2xx" "wrk reported non-2xx responses through the reloads"
assert_ge "$total" 200 "requests completed during the reloads"

st=$(status_json)
assert_contains "$st" '"generation":21' "/status generation after 20 reloads"
assert_contains "$st" '"applied":20,"refused":0' "/status reload counts after 20 reloads"
assert_eq "$(metric roundhouse_config_generation)" 21 "roundhouse_config_generation after 20 reloads"
assert_eq "$(grep -c 'reload: configuration .* generation [0-9]* in force' "$PROXY_LOG" || true)" 20 \
    "'reload: ... in force' log lines"
ra=$(origin_stat "$PA" requests)
rb=$(origin_stat "$PB" requests)
rc=$(origin_stat "$PC" requests)
assert_ge "$rc" 1 "origin C (only ever added by a reload) served requests"
assert_ge "$((ra + rb + rc))" "$total" "origins served at least what wrk counted"
pass "20 reloads (10 SIGHUP, 10 POST /reload) in ${reload_ms} ms under wrk: $total requests, no socket errors, no non-2xx, generation 21; A=$ra B=$rb C=$rc"

# ---------------------------------------------------------------- 2. the last config is the one in force
conf "$PX" C:1 B:0
out=$("${CURL[@]}" --max-time 10 -XPOST "$ADMIN/reload" 2>&1) || fail "POST /reload failed: $out"
assert_eq "$out" "reloaded: generation 22" "reload to C and B weight=0"
c0=$(origin_stat "$PC" requests)
got=$(responses 20)
assert_eq "$(sort <<<"$got" | uniq -c | sed 's/^ *//')" "20 200 C" \
    "status and X-Backend of 20 requests after the reload to C only (got: $(tr '\n' ',' <<<"$got"))"
assert_eq "$(origin_stat "$PC" requests)" "$((c0 + 20))" "origin C's request count after 20 requests"
st=$(status_json)
assert_match "$st" "\"address\":\"127.0.0.1:$PB\",[^}]*\"weight\":0,\"state\":\"draining\",\"since\":[0-9]+,\"routed\":false" \
    "/status: B (weight=0) draining and not routed"
# C was just added again (the 20th reload removed it): routed at once (initial = up), "unknown" until
# its first health check
assert_match "$st" "\"address\":\"127.0.0.1:$PC\",[^}]*\"weight\":1,\"state\":\"(up|unknown)\",\"since\":[0-9]+,\"routed\":true" \
    "/status: C (weight 1) routed"
assert_not_contains "$st" "\"address\":\"127.0.0.1:$PA\"" "/status still lists the removed A"
pass "after the reload to C (weight 1, re-added) and B weight=0: 20/20 requests to C, B draining, A gone"

# ---------------------------------------------------------------- 3. a broken file is refused
conf "$PX" C:1 B:0
sed -i "s/^backend = 127\\.0\\.0\\.1:$PB weight=0\$/backend = 127.0.0.1:notaport/" "$INI"
bad_line=$(grep -n 'notaport' "$INI" | cut -d: -f1)
assert_match "$bad_line" '^[0-9]+$' "the broken line is in $INI"
code=$("${CURL[@]}" --max-time 10 -XPOST -o "$E2E_TMP/reload.body" -w '%{http_code}' "$ADMIN/reload" 2>&1) ||
    fail "POST /reload of the broken file failed: $code"
out=$(cat "$E2E_TMP/reload.body")
assert_eq "$code" 400 "POST /reload of a broken file (body: $out)"
assert_contains "$out" "reload refused, the running configuration stays: " "POST /reload answer"
assert_contains "$out" "$INI:$bad_line: " "POST /reload answer names FILE:LINE"
got=$(responses 5)
assert_eq "$(sort <<<"$got" | uniq -c | sed 's/^ *//')" "5 200 C" \
    "status and X-Backend of 5 requests after the refused reload (got: $(tr '\n' ',' <<<"$got"))"
m=$(metrics)
assert_contains "$m" $'\nroundhouse_config_last_reload_successful 0\n' "metrics after the refused reload"
assert_contains "$m" $'\nroundhouse_config_reloads_total{result="refused"} 1\n' "refused count after the refused reload"
assert_contains "$m" $'\nroundhouse_config_generation 22\n' "generation after the refused reload"
grep -q "reload: $INI:$bad_line: .*keeping the running configuration" "$PROXY_LOG" ||
    fail "no 'reload: $INI:$bad_line: ...; keeping the running configuration' in the log"
pass "broken file refused: $out"

conf "$PX" C:1 B:0
kill -s HUP "$PROXY_PID"
wait_until 5 _metric_is roundhouse_config_last_reload_successful 1 ||
    fail "last_reload_successful is '$(metric roundhouse_config_last_reload_successful)' after the fixed file and SIGHUP"
assert_eq "$(generation)" 23 "generation after the fixed file"
req "http://127.0.0.1:$PX/"
assert_status 200 "request after the fixed file"
assert_eq "$BACKEND" C "X-Backend after the fixed file"
pass "fixed file + SIGHUP: last_reload_successful 1, generation 23"

# ---------------------------------------------------------------- 4. listen cannot change live
conf "$PX2" C:1
out=$("${CURL[@]}" --max-time 10 -XPOST "$ADMIN/reload" 2>&1) || fail "POST /reload failed: $out"
assert_eq "$out" "reloaded: generation 24" "reload with a new [server] listen (the rest applies)"
grep -q "reload: \[server\] listen/listen_tls changed: needs a restart" "$PROXY_LOG" ||
    fail "no 'reload: [server] listen/listen_tls changed: needs a restart' in the log"
port_listening "$PX" || fail "the proxy no longer listens on its old port $PX"
! port_listening "$PX2" || fail "the proxy listens on the new port $PX2 without a restart"
connect_refused "$PX2" || fail "a connect to the new port $PX2 succeeded"
req "http://127.0.0.1:$PX/"
assert_status 200 "request on the old port after the listen change"
assert_eq "$BACKEND" C "X-Backend on the old port after the listen change"
pass "changed [server] listen: '$(grep -o 'reload: \[server\] listen.*' "$PROXY_LOG" | head -n1)'; still only on :$PX"
