#!/usr/bin/env bash
# t_upgrade: the binary upgrade hands the listening sockets over without refusing a connection.
# Under wrk (-t2 -c16) and a loop of one-connection curl requests, three upgrades ~1.5 s apart: two
# by starting "roundhouse --upgrade-from OLDPID" by hand, the third by SIGUSR2 (the proxy starts its
# own binary). Each time the new process received the old one's listeners (every worker's and the
# admin listener), the old one logged its stop and exited 0, and /status on the (handed-over) admin
# port names the new pid. wrk sees no socket error and no non-2xx, the curl loop no failure.
# Then failed upgrades leave the running process serving: a new process with an invalid config
# (by hand, and through SIGUSR2), one whose config cannot be served after it received the
# listeners, and --upgrade-from a pid that is not roundhouse. A last upgrade still succeeds.
set -euo pipefail
PORT_BASE=23700
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

command -v wrk >/dev/null || fail "wrk is not installed (apt-get install wrk)"

alloc_port PA
alloc_port PB
alloc_port PX
alloc_port PADM
start_origin A "$PA"
start_origin B "$PB"
INI=$E2E_TMP/rh.ini
INI_THREADS=2 INI_EXTRA=$'[admin]\nlisten = 127.0.0.1:'"$PADM" write_ini "$INI" "$PX" "$PA $PB"
start_proxy "$INI"
wait_port "$PADM" 5 "$PROXY_PID" || fail "admin listener not up on $PADM"
N_LISTENERS=3 # 2 workers' listeners (SO_REUSEPORT) and the admin listener

# status_pid: the pid /status on the admin port reports ("" if it does not answer)
status_pid() {
    "${CURL[@]}" --max-time 2 "http://127.0.0.1:$PADM/status" 2>/dev/null |
        sed -n 's/.*"pid":\([0-9]*\).*/\1/p' || true
}
status_pid_is() { [[ $(status_pid) == "$1" ]]; }
_has_line() { grep -qF -- "$2" "$1"; }
stopped_lines() { log_count "$1" '\] info: stopped$'; }
stamp() { date +%T.%3N; }

# check_handover OLD OLD_LOG STOPPED NEW NEW_LOG T0 WHAT: the old process exits 0 after handing
# its listeners over (when it is not this shell's child, a SIGUSR2 child: it exits and logs one
# more "stopped" line than the STOPPED it had, the line of a clean exit), the new one received them
# and /status names it.
check_handover() {
    local old=$1 old_log=$2 stopped=$3 new=$4 new_log=$5 t0=$6 what=$7 n serving
    wait_until 10 _has_line "$new_log" "upgrade: serving; pid $old stops accepting and drains" ||
        fail "$what: the new process $new did not report serving (alive: $(is_alive "$new" && echo yes || echo no))"
    serving=$(($(now_ms) - t0))
    n=$(sed -n "s/.*upgrade: received \\([0-9]*\\) listening socket(s) from pid $old\$/\\1/p" "$new_log")
    assert_eq "$n" "$N_LISTENERS" "$what: listening sockets the new process $new received from $old"
    if [[ " ${PROXY_PIDS[*]} " == *" $old "* ]]; then
        wait_exit "$old" 10 || fail "$what: the old process $old still runs 10 s after the handover"
        assert_eq "$EXIT_STATUS" 0 "$what: exit status of the old process $old"
    else
        wait_until 10 not_alive "$old" || fail "$what: the old process $old still runs 10 s after the handover"
        _forget_pid "$old"
    fi
    assert_eq "$(stopped_lines "$old_log")" "$((stopped + 1))" "$what: 'stopped' lines (clean exits) in $(basename "$old_log")"
    _has_line "$old_log" "upgrade: handed $N_LISTENERS listening socket(s) to a new process" ||
        fail "$what: the old process did not log the handover"
    _has_line "$old_log" "upgrade: the new process serves on the listeners; stopping" ||
        fail "$what: the old process did not log its stop"
    wait_until 5 status_pid_is "$new" || fail "$what: /status reports pid '$(status_pid)', not $new"
    is_alive "$new" || fail "$what: the new process $new died"
    pass "$what: pid $old -> $new ($n sockets handed over), new serving after $serving ms, old exited 0 after $(($(now_ms) - t0)) ms"
}

# upgrade_by_hand LOGNAME: "$RH_BIN -c INI --upgrade-from $PROXY_PID", logging to LOGNAME.log;
# the new process becomes PROXY_PID (and is stopped at exit, its exit status checked).
upgrade_by_hand() {
    local old=$PROXY_PID old_log=$PROXY_LOG new t0 stopped
    stopped=$(stopped_lines "$old_log")
    PROXY_LOG=$E2E_TMP/$1.log
    t0=$(now_ms)
    log "$(stamp) upgrade by hand ($1): starting a new process"
    "$RH_BIN" -c "$INI" --upgrade-from "$old" >>"$PROXY_LOG" 2>&1 &
    new=$!
    E2E_PIDS+=("$new")
    PROXY_PIDS+=("$new")
    PROXY_PID=$new
    check_handover "$old" "$old_log" "$stopped" "$new" "$PROXY_LOG" "$t0" "upgrade by hand ($1)"
}

# upgrade_by_signal: SIGUSR2 to PROXY_PID; its child (same log) becomes PROXY_PID. The child is
# not this shell's: it is stopped at exit, but its exit status cannot be read (not in PROXY_PIDS).
upgrade_by_signal() {
    local old=$PROXY_PID new t0 before stopped
    before=$(log_count "$PROXY_LOG" 'SIGUSR2: binary upgrade: started')
    stopped=$(stopped_lines "$PROXY_LOG")
    t0=$(now_ms)
    log "$(stamp) upgrade by SIGUSR2: kill -USR2 $old"
    kill -USR2 "$old"
    _started() { (($(log_count "$PROXY_LOG" 'SIGUSR2: binary upgrade: started') > before)); }
    wait_until 5 _started || fail "SIGUSR2: no 'binary upgrade: started' line"
    new=$(sed -n 's/.*SIGUSR2: binary upgrade: started .* as pid \([0-9]*\)$/\1/p' "$PROXY_LOG" | tail -n1)
    assert_match "$new" '^[0-9]+$' "SIGUSR2: the new pid"
    E2E_PIDS+=("$new")
    PROXY_PID=$new
    check_handover "$old" "$PROXY_LOG" "$stopped" "$new" "$PROXY_LOG" "$t0" "upgrade by SIGUSR2"
}

req "http://127.0.0.1:$PX/"
assert_status 200 "a request before the upgrades"
wait_until 2 status_pid_is "$PROXY_PID" || fail "/status reports pid '$(status_pid)', not $PROXY_PID"

# ---------------------------------------------------------------- 1. three upgrades under load

WRK_OUT=$E2E_TMP/wrk.out
timeout 30 wrk -t2 -c16 -d7s --timeout 5s "http://127.0.0.1:$PX/" >"$WRK_OUT" 2>&1 &
wrk_pid=$!
E2E_PIDS+=("$wrk_pid")
# one new connection per request: a refused or reset connect shows up here at once
(
    trap - EXIT ERR
    set +e
    while [[ ! -e $E2E_TMP/curl.stop ]]; do
        code=$("${CURL[@]}" --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PX/" 2>>"$E2E_TMP/curl.err")
        echo "${code:-000}"
    done >"$E2E_TMP/curl.codes"
) &
curl_pid=$!
E2E_PIDS+=("$curl_pid")

T0=$(now_ms)
log "$(stamp) wrk started"
at() { # at MS: sleep until MS after T0 (not at all when already late)
    local left
    while left=$(($1 - ($(now_ms) - T0))) && ((left > 0)); do
        sleep_ms "$((left < 200 ? left : 200))"
    done
}
at 1000
upgrade_by_hand proxy-up1
at 2500
upgrade_by_hand proxy-up2
at 4000
upgrade_by_signal
log "the three upgrades took until $(($(now_ms) - T0)) ms after wrk started (wrk runs 7000 ms)"
(($(now_ms) - T0 < 6500)) || log "the upgrades ended late: wrk saw little of the last one"

wait_exit "$wrk_pid" 20 || fail "wrk did not finish"
assert_eq "$EXIT_STATUS" 0 "wrk exit status ($(cat "$WRK_OUT"))"
touch "$E2E_TMP/curl.stop"
wait_exit "$curl_pid" 10 || fail "the curl loop did not stop"
wout=$(cat "$WRK_OUT")
sed 's/^/# /' <<<"$wout"
total=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$wout")
assert_match "$total" '^[0-9]+$' "wrk request count"
assert_not_contains "$wout" "Socket errors" "wrk across the upgrades"
assert_not_contains "$wout" "Non-2xx" "wrk across the upgrades"
assert_ge "$total" 500 "requests wrk completed in 7 s"
ra=$(origin_stat "$PA" requests)
rb=$(origin_stat "$PB" requests)
assert_ge "$((ra + rb))" "$total" "the origins served every request wrk counted (A=$ra B=$rb)"
pass "wrk across three upgrades: $total requests, no socket error, no non-2xx (origins: A=$ra B=$rb)"

n_curl=$(wc -l <"$E2E_TMP/curl.codes")
n_bad=$(grep -cvx 200 "$E2E_TMP/curl.codes" || true)
((n_bad == 0)) || fail "curl requests (one connection each) not answered 200 across the upgrades: $(grep -vx 200 "$E2E_TMP/curl.codes" | sort | uniq -c | tr '\n' ' ') $(head -c 300 "$E2E_TMP/curl.err")"
assert_ge "$n_curl" 20 "curl requests made across the upgrades"
pass "$n_curl one-connection curl requests across the upgrades, all 200"

# every process served part of the load, and the old ones drained it without cutting anything off
for f in proxy proxy-up1; do
    t=$(grep -o 'totals: .*' "$E2E_TMP/$f.log" || true)
    served=$(sed -n 's/^totals: [0-9]* connections, \([0-9]*\) requests.*/\1/p' <<<"$t")
    assert_match "$served" '^[0-9]+$' "the exit totals of $f.log"
    assert_ge "$served" 1 "requests the process of $f.log served"
    assert_contains "$t" " 0 cut off)" "the process of $f.log cut no request off"
    log "$f.log: $t"
done

req "http://127.0.0.1:$PX/"
assert_status 200 "a request after the upgrades"
is_alive "$PROXY_PID" || fail "the last process $PROXY_PID is not alive"
pass "the last process $PROXY_PID serves"

# ---------------------------------------------------------------- 2. failed upgrades

LIVE=$PROXY_PID
still_serving() { # WHAT
    is_alive "$LIVE" || fail "$1: the running process $LIVE died"
    req "http://127.0.0.1:$PX/"
    assert_status 200 "$1: a request"
    status_pid_is "$LIVE" || fail "$1: /status reports pid '$(status_pid)', not $LIVE"
}

# a config the new process refuses at load: it never touches the running one
sed 's/^threads = .*/threads = abc/' "$INI" >"$E2E_TMP/bad.ini"
rc=0
out=$(timeout 10 "$RH_BIN" -c "$E2E_TMP/bad.ini" --upgrade-from "$LIVE" 2>&1) || rc=$?
assert_ne "$rc" 0 "exit status of a new process with threads = abc ($out)"
assert_ne "$rc" 124 "a new process with threads = abc did not exit within 10 s"
assert_contains "$out" "threads" "the error of a new process with threads = abc"
still_serving "after a new process with an invalid config"
pass "invalid config: the new process exits $rc ($(head -n1 <<<"$out")); pid $LIVE serves"

# --upgrade-from a pid that is not roundhouse (an origin)
opid=${ORIGIN_PID[A]}
rc=0
out=$(timeout 10 "$RH_BIN" -c "$INI" --upgrade-from "$opid" 2>&1) || rc=$?
assert_eq "$rc" 1 "exit status of --upgrade-from $opid (an origin) ($out)"
assert_contains "$out" "--upgrade-from $opid" "the error names the pid"
is_alive "$opid" || fail "the origin $opid died"
still_serving "after --upgrade-from an origin's pid"
pass "--upgrade-from a non-roundhouse pid exits 1: $(grep -o -- '--upgrade-from.*' <<<"$out" | head -n1)"

# a new process that receives the listeners, then cannot serve its config (one more listen
# address, in use by origin A): it exits 1; the running one closes the handover and goes on
INI_THREADS=2 INI_SERVER_EXTRA="listen = 127.0.0.1:$PA" INI_EXTRA=$'[admin]\nlisten = 127.0.0.1:'"$PADM" \
    write_ini "$E2E_TMP/busy.ini" "$PX" "$PA $PB"
rc=0
out=$(timeout 15 "$RH_BIN" -c "$E2E_TMP/busy.ini" --upgrade-from "$LIVE" 2>&1) || rc=$?
assert_eq "$rc" 1 "exit status of a new process whose extra listen port is in use ($out)"
assert_contains "$out" "upgrade: received $N_LISTENERS listening socket(s) from pid $LIVE" \
    "the new process with a busy port received the listeners first"
wait_until 5 _has_line "$PROXY_LOG" "upgrade: the new process went away before it was ready; this one goes on serving" ||
    fail "the running process did not log the failed handover"
still_serving "after a new process that failed after the handover"
pass "a new process failing after the handover exits 1 ($(grep -m1 -i 'error' <<<"$out" | sed 's/^.*error: //')); pid $LIVE serves"

# SIGUSR2 while the config is invalid: the child exits 1 at config load
cp "$INI" "$E2E_TMP/rh.ini.good"
cp "$E2E_TMP/bad.ini" "$INI"
kill -USR2 "$LIVE"
_child_failed() { grep -qE "upgrade: the new process [0-9]+ exited \(status 1\) before it was ready; this one goes on serving" "$PROXY_LOG"; }
wait_until 5 _child_failed || fail "SIGUSR2 with an invalid config: no 'exited (status 1)' line"
cp "$E2E_TMP/rh.ini.good" "$INI"
still_serving "after SIGUSR2 with an invalid config"
pass "SIGUSR2 with an invalid config: $(grep -oE 'the new process [0-9]+ exited \(status 1\)' "$PROXY_LOG" | tail -n1); pid $LIVE serves"

# ... and an upgrade after all that still works
upgrade_by_hand proxy-up3
req "http://127.0.0.1:$PX/"
assert_status 200 "a request after the last upgrade"

# nothing went wrong in any log of the test
errs=$(grep -hE '\] (error|warn): ' "$E2E_TMP"/proxy*.log |
    grep -vE 'open file limit|went away before it was ready|exited \(status 1\) before it was ready' || true)
assert_eq "$errs" "" "errors or warnings in the proxy logs"
pass "no unexpected error or warning in the proxy logs"
