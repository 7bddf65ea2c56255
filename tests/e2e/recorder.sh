# shellcheck shell=bash
# Helpers for the scenarios that run against tests/e2e/recorder.py (t_smuggling*.sh), sourced after
# lib.sh: per-check verdicts that do not stop the scenario, the recording backend, one long-lived
# client driver, and greps over what the recorder kept.

REC=(python3 "$E2E_DIR/recorder.py")

# ---------------------------------------------------------------- verdicts
# Each check prints "ok - ..." or "not ok - ..." and the scenario goes on; checks_summary fails it
# at the end if any failed.
FAILED=()
NCHECK=0
ok() {
    NCHECK=$((NCHECK + 1))
    pass "$1"
}
bad() { # NAME DETAIL
    NCHECK=$((NCHECK + 1))
    FAILED+=("$1")
    printf 'not ok - %s: %s\n  %s\n' "$E2E_NAME" "$1" "${2//$'\n'/$'\n'  }"
}
# verdict NAME DETAIL CMD...: ok if CMD succeeds, else bad with DETAIL
verdict() {
    local name=$1 detail=$2
    shift 2
    if "$@"; then ok "$name"; else bad "$name" "$detail"; fi
}
checks_summary() {
    echo "# $NCHECK checks, ${#FAILED[@]} failed"
    if ((${#FAILED[@]})); then
        printf '# failed: %s\n' "${FAILED[@]}"
        exit 1
    fi
}

# ---------------------------------------------------------------- the recorder
# start_recorder [serve args]: the recording backend on a new port RP, keeping its files in RDIR.
start_recorder() {
    alloc_port RP
    RDIR=$E2E_TMP/rec
    "${REC[@]}" serve --port "$RP" --dir "$RDIR" "$@" >>"$E2E_TMP/origin-rec.log" 2>&1 &
    E2E_PIDS+=("$!")
    REC_PID=$!
    wait_until 5 _rec_ready || fail "recorder did not print ready within 5 s"
    wait_port "$RP" 5 "$REC_PID" || fail "recorder not listening on $RP"
    touch "$RDIR/all.raw" "$RDIR/requests.log"
}
_rec_ready() { grep -qx ready "$E2E_TMP/origin-rec.log" 2>/dev/null; }

# ---------------------------------------------------------------- the client driver
# The clients run in one long-lived "recorder.py drive" process fed through a FIFO (a Python
# start per client would cost more than the whole exchange); drv FIELD... runs one command and
# leaves its output (without the final ".") in DRV_OUT.
start_driver() {
    mkfifo "$E2E_TMP/drv.in" "$E2E_TMP/drv.out"
    "${REC[@]}" drive <"$E2E_TMP/drv.in" >"$E2E_TMP/drv.out" 2>>"$E2E_TMP/driver.log" &
    E2E_PIDS+=("$!")
    exec {DW}>"$E2E_TMP/drv.in" {DR}<"$E2E_TMP/drv.out"
}
DRV_OUT=""
drv() {
    local IFS=$'\x1f' l
    [[ "$*" != *$'\n'* ]] || fail "drv: a newline in a command: $*"
    printf '%s\n' "$*" >&"$DW"
    DRV_OUT=""
    while IFS= read -r -t 30 -u "$DR" l; do
        if [[ $l == . ]]; then return 0; fi
        DRV_OUT+="$l"$'\n'
    done
    fail "the client driver did not answer within 30 s (see driver.log)"
}

# ---------------------------------------------------------------- looking at bytes
# esc_file FILE: its bytes, escaped
esc_file() {
    drv esc "$1" 0 800
    printf '%s' "${DRV_OUT%$'\n'}"
}
oneline() { tr '\n' '|' <<<"$1"; }
# n_exact FILE LINE: lines of FILE that are exactly LINE and CR (CRLF lines); "" if no FILE
n_exact() { grep -cxF -- "$2"$'\r' "$1" 2>/dev/null || true; }
# n_named FILE ERE: lines of FILE whose field name matches ERE (case-insensitive); "" if no FILE
n_named() { grep -ciE -- "^($2)[ \t]*:" "$1" 2>/dev/null || true; }
# nogrep STRING FILE: FILE does not contain STRING
nogrep() { ! grep -qaF -- "$1" "$2"; }
