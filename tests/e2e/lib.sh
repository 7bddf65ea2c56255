# shellcheck shell=bash
# Shared helpers for the roundhouse end-to-end scenarios (tests/e2e/t_*.sh).
#
# A scenario does:
#   set -euo pipefail
#   PORT_BASE=20000                      # its own range of 100 ports
#   source "$E2E_DIR/lib.sh"
#
# Environment (set by tests/e2e/meson.build):
#   RH_BIN      the roundhouse binary
#   ORIGIN_BIN  the test backend (tests/e2e/origin.c)
#   E2E_DIR     this directory (lib.sh, rawclient.py)
# Optional:
#   E2E_KEEP=1  keep the temp dir (its path is printed at exit)
#   E2E_VERBOSE=1  print the proxy log at exit even on success
#
# Everything runs on 127.0.0.1. Every process started here is remembered by PID and
# stopped at exit (SIGTERM, then SIGKILL after 3 s). Every wait has a timeout.

: "${RH_BIN:?RH_BIN is not set (path to roundhouse)}"
: "${ORIGIN_BIN:?ORIGIN_BIN is not set (path to the e2e origin)}"
: "${E2E_DIR:?E2E_DIR is not set (tests/e2e)}"
: "${PORT_BASE:?the scenario must set PORT_BASE before sourcing lib.sh}"

# Never let a proxy from the environment get between curl and 127.0.0.1.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

E2E_NAME=$(basename "$0" .sh)
E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/rh-e2e-${E2E_NAME}.XXXXXX")
E2E_PIDS=()
PROXY_PIDS=()
declare -A ORIGIN_PID=()
declare -A ORIGIN_PORT=()
declare -A ORIGIN_TLS_PORT=() # ports of origins started with --tls-cert (origin_stat uses https)
PROXY_PID=""
PROXY_LOG=""
PROXY_PORT=""
LAST_PID=""
_next_port=$PORT_BASE
_port_limit=$((PORT_BASE + 100))

CURL=(curl -sS --noproxy '*' --max-time 20)
RAWCLIENT=(python3 "$E2E_DIR/rawclient.py")

log() { printf '# %s: %s\n' "$E2E_NAME" "$*" >&2; }
pass() { printf 'ok - %s: %s\n' "$E2E_NAME" "$*"; }

# ---------------------------------------------------------------- processes

# is_alive PID: the process exists and is not a zombie.
is_alive() {
    local pid=$1 st
    [[ -r /proc/$pid/stat ]] || return 1
    st=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

_forget_pid() {
    local pid=$1 i
    for i in "${!E2E_PIDS[@]}"; do
        if [[ ${E2E_PIDS[$i]} == "$pid" ]]; then unset 'E2E_PIDS[i]'; fi
    done
    return 0
}

# wait_exit PID TIMEOUT_S: wait (bounded) for a child to exit; reaps it and sets
# EXIT_STATUS. Returns 1 if it is still running after TIMEOUT_S.
EXIT_STATUS=""
wait_exit() {
    local pid=$1 timeout=$2
    if ! wait_until "$timeout" not_alive "$pid"; then
        return 1
    fi
    EXIT_STATUS=0
    wait "$pid" 2>/dev/null || EXIT_STATUS=$?
    _forget_pid "$pid"
    return 0
}
not_alive() { ! is_alive "$1"; }

# stop_pid PID [SIGNAL] [GRACE_S]: signal (default TERM), wait up to GRACE_S (default 3),
# then SIGKILL and reap. Sets EXIT_STATUS to the status the process exited with.
stop_pid() {
    local pid=$1 sig=${2:-TERM} grace=${3:-3}
    [[ -n $pid ]] || return 0
    if is_alive "$pid"; then
        kill -s "$sig" "$pid" 2>/dev/null || true
        if ! wait_until "$grace" not_alive "$pid"; then
            log "pid $pid did not exit within ${grace}s of SIG$sig; sending SIGKILL"
            kill -s KILL "$pid" 2>/dev/null || true
            wait_until 5 not_alive "$pid" || log "pid $pid survived SIGKILL?"
        fi
    fi
    EXIT_STATUS=0
    wait "$pid" 2>/dev/null || EXIT_STATUS=$?
    _forget_pid "$pid"
    return 0
}

_e2e_cleanup() {
    local rc=$? pid i
    set +e
    trap - EXIT INT TERM
    # proxies first: each must exit 0 on SIGTERM (graceful shutdown, no sanitizer report)
    for pid in "${PROXY_PIDS[@]}"; do
        if [[ " ${E2E_PIDS[*]} " != *" $pid "* ]]; then continue; fi # already reaped by the test
        local was_alive=1
        is_alive "$pid" || was_alive=0
        stop_pid "$pid" TERM 8
        if ((!was_alive)); then
            echo "FAIL: $E2E_NAME: proxy pid $pid had died during the test (exit status $EXIT_STATUS)" >&2
            ((rc)) || rc=1
        elif [[ $EXIT_STATUS != 0 ]]; then
            echo "FAIL: $E2E_NAME: proxy pid $pid exited with status $EXIT_STATUS on SIGTERM at cleanup" >&2
            ((rc)) || rc=1
        fi
    done
    # then everything else, in reverse start order
    local pids=("${E2E_PIDS[@]}")
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[$i]}
        if [[ -n $pid ]]; then stop_pid "$pid" TERM 3; fi
    done
    local f
    for f in "$E2E_TMP"/proxy*.log "$E2E_TMP"/origin-*.log; do
        [[ -f $f ]] || continue
        if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$f"; then
            echo "FAIL: $E2E_NAME: sanitizer report in $(basename "$f"):" >&2
            grep -m1 -A 30 -E 'ERROR: |WARNING: ThreadSanitizer|runtime error:' "$f" >&2
            ((rc)) || rc=1
        fi
    done
    if [[ $rc -ne 0 || ${E2E_VERBOSE:-0} == 1 ]]; then
        for f in "$E2E_TMP"/proxy*.log; do
            [[ -f $f ]] || continue
            echo "----- $(basename "$f") (last 40 lines) -----" >&2
            tail -n 40 "$f" >&2
        done
        for f in "$E2E_TMP"/origin-*.log; do
            [[ -s $f ]] || continue
            echo "----- $(basename "$f") (last 10 lines) -----" >&2
            tail -n 10 "$f" >&2
        done
    fi
    if [[ ${E2E_KEEP:-0} == 1 ]]; then
        echo "# kept $E2E_TMP" >&2
    else
        rm -rf "$E2E_TMP"
    fi
    if [[ $rc -eq 0 ]]; then
        echo "PASS $E2E_NAME"
    else
        echo "FAIL $E2E_NAME (exit $rc)" >&2
    fi
    exit "$rc"
}
trap _e2e_cleanup EXIT
# a command that fails under set -e outside an assert: say where
set -E
trap 'echo "FAIL: $E2E_NAME: line $LINENO: \"$BASH_COMMAND\" exited $?" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- time

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_until TIMEOUT_S CMD [ARGS...]: run CMD every 50 ms until it succeeds (0) or
# TIMEOUT_S (may be fractional) passes (1).
wait_until() {
    local timeout=$1
    shift
    local deadline
    deadline=$(($(now_ms) + $(awk -v t="$timeout" 'BEGIN { printf "%d", t * 1000 }')))
    while :; do
        if "$@"; then return 0; fi
        (($(now_ms) >= deadline)) && return 1
        sleep 0.05
    done
}

# sleep_ms N
sleep_ms() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }

# ---------------------------------------------------------------- ports

# The states (hex, 0A = LISTEN) of every TCP socket whose local port is PORT, read from
# /proc/net/tcp{,6} (no dependency on ss/iproute2).
_port_states() {
    local hex f files=()
    hex=$(printf '%04X' "$1")
    for f in /proc/net/tcp /proc/net/tcp6; do
        if [[ -r $f ]]; then files+=("$f"); fi
    done
    awk -v h=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == h { print $4 }' "${files[@]}" || true
}
port_listening() { _port_states "$1" | grep -qx 0A; }
port_in_use() { [[ -n $(_port_states "$1") ]]; }

# alloc_port VAR: store in VAR the next port of this scenario's range that nothing uses.
alloc_port() {
    local -n _out=$1
    while ((_next_port < _port_limit)); do
        local p=$_next_port
        _next_port=$((_next_port + 1))
        if ! port_in_use "$p"; then
            _out=$p
            return 0
        fi
    done
    fail "no free port left in $PORT_BASE..$((_port_limit - 1))"
}

# wait_port PORT [TIMEOUT_S=5] [PID]: wait until something listens on 127.0.0.1:PORT.
# If PID is given and dies meanwhile, give up at once.
wait_port() {
    local port=$1 timeout=${2:-5} pid=${3:-}
    local deadline
    deadline=$(($(now_ms) + $(awk -v t="$timeout" 'BEGIN { printf "%d", t * 1000 }')))
    while :; do
        port_listening "$port" && return 0
        if [[ -n $pid ]] && ! is_alive "$pid"; then
            log "pid $pid exited before listening on $port"
            return 1
        fi
        (($(now_ms) >= deadline)) && return 1
        sleep 0.05
    done
}

# wait_port_closed PORT [TIMEOUT_S=5]
wait_port_closed() {
    local port=$1 timeout=${2:-5}
    wait_until "$timeout" _not_listening "$port"
}
_not_listening() { ! port_listening "$1"; }

# connect_refused PORT: a TCP connect to 127.0.0.1:PORT fails.
connect_refused() {
    ! timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# ---------------------------------------------------------------- origins

# start_origin NAME PORT [ORIGIN ARGS...]: start the test backend, wait until it listens.
start_origin() {
    local name=$1 port=$2
    shift 2
    if port_listening "$port"; then
        fail "start_origin $name: port $port is already in use"
    fi
    if [[ " $* " == *" --tls-cert "* ]]; then ORIGIN_TLS_PORT[$port]=1; fi
    "$ORIGIN_BIN" --port "$port" --name "$name" --host 127.0.0.1 "$@" \
        >>"$E2E_TMP/origin-$name.log" 2>&1 &
    LAST_PID=$!
    E2E_PIDS+=("$LAST_PID")
    ORIGIN_PID[$name]=$LAST_PID
    ORIGIN_PORT[$name]=$port
    wait_port "$port" 5 "$LAST_PID" || fail "origin $name did not listen on $port within 5s"
}

# stop_origin NAME: SIGKILL-free stop (SIGTERM; origin exits at once).
stop_origin() {
    local name=$1
    stop_pid "${ORIGIN_PID[$name]}" TERM 3
    wait_port_closed "${ORIGIN_PORT[$name]}" 5 || fail "origin $name port still listening"
}

# origin_stat PORT FIELD: accepts or requests (or, of a TLS origin, tls_full or tls_resumed) of
# an origin, read directly (not via proxy). /stats itself is not counted by the origin.
origin_stat() {
    local port=$1 field=$2 body url="http://127.0.0.1:$1/stats" extra=()
    if [[ -n ${ORIGIN_TLS_PORT[$port]:-} ]]; then
        url="https://127.0.0.1:$port/stats"
        extra=(--insecure)
    fi
    body=$("${CURL[@]}" --max-time 5 "${extra[@]}" "$url") || fail "cannot read /stats of :$port"
    sed -n "s/.*\\b$field=\\([0-9]*\\).*/\\1/p" <<<"$body"
}

# pattern_sha N: sha256 of the origin's N-byte pattern.
pattern_sha() { "$ORIGIN_BIN" --pattern "$1" | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- proxy

# write_ini FILE LISTEN_PORT "BACKEND_PORTS..." [EXTRA UPSTREAM LINES...]
# Extra whole sections can be appended through INI_EXTRA (a string), and the
# defaults below overridden by INI_THREADS, INI_MAX_CONNECTIONS, INI_HC_TYPE, INI_HC_FREQUENCY, INI_KEEPALIVE,
# INI_CLIENT_HEADER, INI_UPSTREAM_READ, INI_IDLE, INI_SHUTDOWN, INI_HC_TIMEOUT; lines can be added to
# [server] through INI_SERVER_EXTRA and to [health_check] through INI_HC_EXTRA (strings).
write_ini() {
    local file=$1 listen=$2 backends=$3
    shift 3
    {
        echo "[server]"
        echo "listen = 127.0.0.1:$listen"
        echo "threads = ${INI_THREADS:-2}"
        echo "max_connections = ${INI_MAX_CONNECTIONS:-1000}"
        if [[ -n ${INI_SERVER_EXTRA:-} ]]; then printf '%s\n' "$INI_SERVER_EXTRA"; fi
        echo "[upstream]"
        echo "algorithm = ${INI_ALGORITHM:-round_robin}"
        local p
        for p in $backends; do echo "backend = 127.0.0.1:$p"; done
        echo "keepalive = ${INI_KEEPALIVE:-64}"
        local l
        for l in "$@"; do echo "$l"; done
        echo "[health_check]"
        echo "type = ${INI_HC_TYPE:-tcp}"
        echo "frequency = ${INI_HC_FREQUENCY:-200ms}"
        echo "timeout = ${INI_HC_TIMEOUT:-100ms}"
        echo "rise = 1"
        echo "fall = 1"
        if [[ -n ${INI_HC_EXTRA:-} ]]; then printf '%s\n' "$INI_HC_EXTRA"; fi
        echo "[timeouts]"
        echo "connect = 1s"
        echo "client_header = ${INI_CLIENT_HEADER:-2s}"
        echo "upstream_read = ${INI_UPSTREAM_READ:-10s}"
        echo "idle = ${INI_IDLE:-10s}"
        echo "shutdown = ${INI_SHUTDOWN:-5s}"
        if [[ -n ${INI_EXTRA:-} ]]; then printf '%s\n' "$INI_EXTRA"; fi
    } >"$file"
}

# start_proxy INI [LOGNAME=proxy]: run "$RH_BIN -c INI" in the background (stdout and
# stderr to $E2E_TMP/LOGNAME.log), wait until its listen port accepts (5 s).
# Sets PROXY_PID, PROXY_PORT, PROXY_LOG (the latest proxy started).
start_proxy() {
    local ini=$1 name=${2:-proxy} port
    port=$(sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$ini" | head -n1)
    [[ -n $port ]] || fail "start_proxy: no 'listen = 127.0.0.1:PORT' in $ini"
    if port_listening "$port"; then
        fail "start_proxy: port $port is already in use"
    fi
    PROXY_LOG=$E2E_TMP/$name.log
    "$RH_BIN" -c "$ini" >>"$PROXY_LOG" 2>&1 &
    PROXY_PID=$!
    LAST_PID=$PROXY_PID
    E2E_PIDS+=("$PROXY_PID")
    PROXY_PIDS+=("$PROXY_PID")
    PROXY_PORT=$port
    wait_port "$port" 5 "$PROXY_PID" || fail "proxy did not listen on $port within 5s"
}

# proxy_rss_kb [PID]: VmRSS of the proxy in KiB.
proxy_rss_kb() {
    local pid=${1:-$PROXY_PID}
    awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"
}

# ---------------------------------------------------------------- TLS

# make_certs: generate the test PKI (tests/e2e/certs.sh) into $E2E_TMP/certs and set CERTS to it:
# ca, backend, soon, selfsigned, wrongname, edge, edge2 (.pem and .key each).
CERTS=""
make_certs() {
    CERTS=$E2E_TMP/certs
    bash "$E2E_DIR/certs.sh" "$CERTS" || fail "certs.sh failed"
}

# start_tls_origin NAME PORT CERT [ORIGIN ARGS...]: start_origin speaking TLS with
# $CERTS/CERT.pem and $CERTS/CERT.key (make_certs first).
start_tls_origin() {
    local name=$1 port=$2 cert=$3
    shift 3
    [[ -n $CERTS ]] || fail "start_tls_origin: call make_certs first"
    start_origin "$name" "$port" --tls-cert "$CERTS/$cert.pem" --tls-key "$CERTS/$cert.key" "$@"
}

# log_count FILE ERE: number of lines of FILE matching ERE (case-insensitive); 0 if none.
log_count() {
    local n
    n=$(grep -ciE -- "$2" "$1" 2>/dev/null) || true
    echo "${n:-0}"
}

# ---------------------------------------------------------------- HTTP

# req URL [CURL ARGS...]: one curl request. Sets STATUS (000 on connection failure),
# BACKEND (X-Backend of the response, "" if none), BODY (the body, for small bodies),
# HDRS (the header file path). Never fails by itself.
STATUS="" BACKEND="" BODY="" HDRS=""
req() {
    local url=$1
    shift
    HDRS=$E2E_TMP/last.hdr
    local bodyf=$E2E_TMP/last.body
    : >"$HDRS"
    : >"$bodyf"
    STATUS=$("${CURL[@]}" -o "$bodyf" -D "$HDRS" -w '%{http_code}' "$@" "$url" 2>"$E2E_TMP/last.err") || true
    [[ -n $STATUS ]] || STATUS=000
    BACKEND=$(header_value "$HDRS" X-Backend)
    BODY=$(head -c 65536 "$bodyf" | tr -d '\0')
}

# header_value FILE NAME: value of the last NAME header in a curl -D dump.
header_value() {
    awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$2")" '
        { sub(/\r$/, "") }
        index($0, ":") { k = tolower(substr($0, 1, index($0, ":") - 1)); if (k == n) { v = substr($0, index($0, ":") + 1); sub(/^[ \t]+/, "", v); val = v } }
        END { print val }' "$1"
}

# raw PORT [rawclient args...]: send raw bytes (see rawclient.py), print the summary.
raw() {
    local port=$1
    shift
    "${RAWCLIENT[@]}" --port "$port" "$@"
}

# ---------------------------------------------------------------- assertions

# fail MSG: print MSG and exit 1; the exit trap then prints the tail of every proxy and
# origin log of this scenario and stops every process it started.
fail() {
    echo "FAIL: $E2E_NAME: $*" >&2
    exit 1
}

assert_eq() { # ACTUAL EXPECTED MSG
    [[ $1 == "$2" ]] || fail "$3: expected '$2', got '$1'"
}
assert_ne() { # ACTUAL UNEXPECTED MSG
    [[ $1 != "$2" ]] || fail "$3: got '$1'"
}
assert_contains() { # HAYSTACK NEEDLE MSG
    [[ $1 == *"$2"* ]] || fail "$3: '$2' not found in: $(head -c 600 <<<"$1")"
}
assert_not_contains() { # HAYSTACK NEEDLE MSG
    [[ $1 != *"$2"* ]] || fail "$3: '$2' unexpectedly found in: $(head -c 600 <<<"$1")"
}
assert_match() { # STRING ERE MSG
    [[ $1 =~ $2 ]] || fail "$3: '$(head -c 600 <<<"$1")' does not match /$2/"
}
assert_le() { # A B MSG
    (($1 <= $2)) || fail "$3: $1 > $2"
}
assert_ge() { # A B MSG
    (($1 >= $2)) || fail "$3: $1 < $2"
}
assert_status() { # EXPECTED MSG  (checks $STATUS from req)
    [[ $STATUS == "$1" ]] || fail "$2: expected HTTP $1, got $STATUS (body: $(head -c 300 <<<"$BODY"); curl: $(head -c 300 "$E2E_TMP/last.err" 2>/dev/null))"
}

# start_pair_and_proxy: the usual set-up — origins A and B on new ports PA and PB, and a proxy on a
# new port PX in front of both (round-robin, write_ini's defaults); sets PA, PB and PX.
start_pair_and_proxy() {
    alloc_port PA
    alloc_port PB
    alloc_port PX
    start_origin A "$PA"
    start_origin B "$PB"
    write_ini "$E2E_TMP/rh.ini" "$PX" "$PA $PB"
    start_proxy "$E2E_TMP/rh.ini"
}
