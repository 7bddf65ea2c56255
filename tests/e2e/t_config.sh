#!/usr/bin/env bash
# t_config: the command line. -t checks a file (0 good, 1 bad, errors name file:line and
# key), --version and --help exit 0.
set -euo pipefail
PORT_BASE=20800
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

alloc_port PA
alloc_port PX

# run_rh OUTFILE ARGS...: run roundhouse (bounded), stdout+stderr to OUTFILE, sets RC
run_rh() {
    local outf=$1
    shift
    RC=0
    timeout 10 "$RH_BIN" "$@" >"$outf" 2>&1 </dev/null || RC=$?
    [[ $RC != 124 ]] || fail "roundhouse $* did not finish within 10 s"
}

write_ini "$E2E_TMP/good.ini" "$PX" "$PA"
run_rh "$E2E_TMP/out" -t -c "$E2E_TMP/good.ini"
assert_eq "$RC" 0 "roundhouse -t -c good.ini exit status ($(head -c 500 "$E2E_TMP/out"))"
port_listening "$PX" && fail "-t must not start listening"
pass "-t accepts a good file"

# the full example of CONFIG-CONTRACT style keys with comments
cat >"$E2E_TMP/commented.ini" <<INI
; comment
[server]
listen = 127.0.0.1:$PX   ; inline comment
threads = 2
[upstream]
algorithm = round_robin
backend = 127.0.0.1:$PA
keepalive = 0
[health_check]
type = none
INI
run_rh "$E2E_TMP/out" -t -c "$E2E_TMP/commented.ini"
assert_eq "$RC" 0 "roundhouse -t with comments and defaults ($(head -c 500 "$E2E_TMP/out"))"
pass "-t accepts comments and omitted sections"

printf '[server]\nlisten = 127.0.0.1:%s\nbogus_key = 1\n[upstream]\nbackend = 127.0.0.1:%s\n' "$PX" "$PA" \
    >"$E2E_TMP/bad.ini"
run_rh "$E2E_TMP/out" -t -c "$E2E_TMP/bad.ini"
assert_eq "$RC" 1 "roundhouse -t -c bad.ini exit status"
assert_contains "$(cat "$E2E_TMP/out")" "bad.ini:3:" "error names file:line"
assert_contains "$(cat "$E2E_TMP/out")" "bogus_key" "error names the key"
pass "-t rejects an unknown key: $(grep -m1 'bad.ini:3:' "$E2E_TMP/out")"

printf '[server]\nlisten = 127.0.0.1:%s\nthreads = lots\n[upstream]\nbackend = 127.0.0.1:%s\n' "$PX" "$PA" \
    >"$E2E_TMP/badval.ini"
run_rh "$E2E_TMP/out" -t -c "$E2E_TMP/badval.ini"
assert_eq "$RC" 1 "roundhouse -t -c badval.ini exit status"
assert_contains "$(cat "$E2E_TMP/out")" "badval.ini:3:" "bad value: error names file:line"
assert_contains "$(cat "$E2E_TMP/out")" "threads" "bad value: error names the key"
pass "-t rejects a bad value: $(grep -m1 'badval.ini:3:' "$E2E_TMP/out")"

run_rh "$E2E_TMP/out" -t -c "$E2E_TMP/does-not-exist.ini"
assert_ne "$RC" 0 "roundhouse -t -c on a missing file"
pass "-t on a missing file exits $RC"

# running (not -t) with a bad file must fail at once, not listen
run_rh "$E2E_TMP/out" -c "$E2E_TMP/bad.ini"
assert_ne "$RC" 0 "roundhouse -c bad.ini exit status"
pass "roundhouse -c bad.ini refuses to start (exit $RC)"

run_rh "$E2E_TMP/out" --version
assert_eq "$RC" 0 "roundhouse --version exit status"
[[ -s $E2E_TMP/out ]] || fail "--version printed nothing"
pass "--version: $(head -n1 "$E2E_TMP/out")"

run_rh "$E2E_TMP/out" --help
assert_eq "$RC" 0 "roundhouse --help exit status"
[[ -s $E2E_TMP/out ]] || fail "--help printed nothing"
pass "--help exits 0"

# a port that something already listens on is an error, even though the workers' listeners use
# SO_REUSEPORT (which would let a second instance share the port and take half the connections)
alloc_port PA
alloc_port PX
start_origin A "$PA"
write_ini "$E2E_TMP/one.ini" "$PX" "$PA"
start_proxy "$E2E_TMP/one.ini"
run_rh "$E2E_TMP/out" -c "$E2E_TMP/one.ini"
assert_eq "$RC" 1 "a second roundhouse on the same port"
assert_contains "$(cat "$E2E_TMP/out")" "Address already in use" "second instance: why"
req "http://127.0.0.1:$PX/"
assert_status 200 "the first instance still serves"
pass "a second instance on a busy port exits 1: $(grep -m1 'in use' "$E2E_TMP/out")"
