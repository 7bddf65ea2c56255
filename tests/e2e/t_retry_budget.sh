#!/usr/bin/env bash
# t_retry_budget: when every backend fails, retries must not multiply the load. Three backends
# accept a connection, read the request and close without answering (what a crashing app does).
# GET is idempotent, so each failure may go again to another backend, up to [upstream] retries (2):
# unchecked that is 3 connections per request. The per-worker retry budget (20% extra over a
# 10 s window, at least 3 per worker) caps it: the backends see about N + 20% connections for N
# requests, and every client gets a 502.
set -euo pipefail
PORT_BASE=22800
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

N=${E2E_BUDGET_REQUESTS:-150}
THREADS=2

alloc_port P1
alloc_port P2
alloc_port P3
# one process, three ports; each accepted connection is one line on stdout
python3 -u -c '
import selectors, socket, sys
sel = selectors.DefaultSelector()
for p in sys.argv[1:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(p))); s.listen(256); sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        c, _ = key.fileobj.accept()
        c.settimeout(2)
        try:
            c.recv(65536)   # the request, then a close without a byte of response
        except OSError:
            pass
        c.close()
        print("accept", key.fileobj.getsockname()[1], flush=True)
' "$P1" "$P2" "$P3" >"$E2E_TMP/accepts.log" 2>&1 &
E2E_PIDS+=("$!")
wait_port "$P3" 5 "$!" || fail "the closing backends did not start"

alloc_port PX
# type = none: nothing takes the backends out, so every request meets failing backends
INI_THREADS=$THREADS INI_HC_TYPE=none write_ini "$E2E_TMP/rh.ini" "$PX" "$P1 $P2 $P3"
start_proxy "$E2E_TMP/rh.ini"

bad=0
for ((i = 0; i < N; i++)); do
    req "http://127.0.0.1:$PX/r$i"
    [[ $STATUS == 502 ]] || bad=$((bad + 1))
done
assert_eq "$bad" 0 "requests not answered 502 while every backend fails"
sleep 0.3
attempts=$(grep -c '^accept' "$E2E_TMP/accepts.log" || true)
stop_pid "$PROXY_PID" TERM 8
assert_eq "$EXIT_STATUS" 0 "proxy exit status"
line=$(grep -o 'retries: [0-9]* sent, [0-9]* refused by the retry budget' "$PROXY_LOG" || true)
sent=$(sed -n 's/retries: \([0-9]*\) sent.*/\1/p' <<<"$line")
refused=$(sed -n 's/.* sent, \([0-9]*\) refused.*/\1/p' <<<"$line")
assert_match "${sent:-}" '^[0-9]+$' "retries counted in the totals at exit ($line)"

# the budget: 20% of N, plus at least 3 per worker while a worker's share is small
cap=$((N * 20 / 100 + 3 * THREADS))
log "$N requests, every backend failing: $attempts connections to the backends ($sent retries sent, $refused refused by the budget; without the budget it would be $((N * 3)))"
assert_ge "$attempts" "$N" "connections to the backends (one per request at least)"
assert_le "$attempts" $((N + cap)) "connections to the backends: the retry budget caps the extra ones"
assert_eq "$((attempts - N))" "$sent" "each retry is one more connection"
assert_ge "$refused" $((N / 2)) "retries the budget refused"
pass "$N requests against failing backends: $attempts connections (+$sent retries, $refused refused); unchecked: $((N * 3))"
