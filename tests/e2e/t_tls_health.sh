#!/usr/bin/env bash
# t_tls_health: health probes over TLS ([health_check] tls, cert_warn_days).
#   tls = true: a backend whose port answers but does not speak TLS is marked down (the TLS
#   handshake fails) and all requests go to the TLS backend, whose probes complete handshakes;
#   a backend certificate expiring within cert_warn_days (default 14) is warned about, one
#   expiring later is not; tls defaults to the upstream's tls; tls = false probes plain TCP only.
set -euo pipefail
PORT_BASE=21700
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

# ---- the proxy's log lines are not final: match them loosely, here only
LOG_DOWN='down'                            # "backend ADDR down: WHY"
LOG_TLS_FAIL='tls|ssl|handshake|version'   # ... where WHY is a failed TLS handshake
LOG_EXPIRE='expir'                         # "backend ADDR certificate expires in N day(s)"

make_certs
CA=$CERTS/ca.pem
TLS_UPSTREAM=("tls = true" "sni = backend.test" "verify = true" "ca_file = $CA" "host_header = backend.test")
# a TLS probe needs more than write_ini's 100 ms on a loaded machine; the waits below for probes that
# must (or must not) happen are counted in probe periods of HC_MS
HC_MS=500
export INI_HC_FREQUENCY=${HC_MS}ms INI_HC_TIMEOUT=1s

# lines LOG ADDR ERE: lines of LOG naming ADDR (followed by a non-digit) and matching ERE
lines() {
    grep -E -- "${2//./\\.}([^0-9]|\$)" "$1" | grep -iE -- "$3" || true
}
has_line() { [[ -n $(lines "$@") ]]; }
raw_tls_full() { # PORT: every full handshake the TLS origin completed (X-Raw-TLS of /stats)
    "${CURL[@]}" --insecure -D - -o /dev/null "https://127.0.0.1:$1/stats" |
        sed -n 's/^X-Raw-TLS: full=\([0-9]*\).*/\1/p'
}

alloc_port PA # TLS origin, backend.pem (30 days)
alloc_port PB # plain origin: answers TCP, not TLS
alloc_port PC # TLS origin, soon.pem (3 days)
start_tls_origin A "$PA" backend
start_origin B "$PB"
start_tls_origin C "$PC" soon

# ---------------------------------------------------------------- tls = true
alloc_port PX
INI_HC_EXTRA="tls = true" write_ini "$E2E_TMP/rh.ini" "$PX" "$PA $PB" "${TLS_UPSTREAM[@]}"
start_proxy "$E2E_TMP/rh.ini"
wait_until 5 has_line "$PROXY_LOG" "127.0.0.1:$PB" "$LOG_DOWN" ||
    fail "the plain backend 127.0.0.1:$PB was not marked down by TLS probes within 5 s"
l=$(lines "$PROXY_LOG" "127.0.0.1:$PB" "$LOG_DOWN" | head -n1)
assert_match "$l" "($LOG_TLS_FAIL)" "the down line of the plain backend names the TLS handshake failure"
pass "plain backend marked down by TLS probes: ${l#* roundhouse}"

for i in $(seq 1 10); do
    req "http://127.0.0.1:$PX/"
    assert_status 200 "request $i with the plain backend down"
    assert_eq "$BACKEND" A "request $i goes to the TLS backend"
done
pass "10 requests all went to the healthy TLS backend"

# the probes of A complete TLS handshakes (they send no request, so only the raw count shows them)
h0=$(raw_tls_full "$PA")
sleep_ms $((HC_MS * 31 / 10))
h1=$(raw_tls_full "$PA")
log "TLS origin A: $h0 -> $h1 full handshakes in 3.1 probe periods of $HC_MS ms (one of them our own /stats)"
assert_ge "$((h1 - h0))" 3 "handshakes completed with the TLS backend in 3.1 periods of $HC_MS ms probes (+1 for /stats)"
[[ -z $(lines "$PROXY_LOG" "127.0.0.1:$PA" "$LOG_DOWN") ]] ||
    fail "the TLS backend was marked down: $(lines "$PROXY_LOG" "127.0.0.1:$PA" "$LOG_DOWN")"
pass "the TLS backend stays up; its probes complete TLS handshakes"

# ---------------------------------------------------------------- cert_warn_days
# health tls is not set: it defaults to the upstream's tls = true, which the expiry check needs
alloc_port PY
write_ini "$E2E_TMP/expiry.ini" "$PY" "$PA $PC" "${TLS_UPSTREAM[@]}"
start_proxy "$E2E_TMP/expiry.ini" proxy-expiry
wait_until 5 has_line "$PROXY_LOG" "127.0.0.1:$PC" "$LOG_EXPIRE" ||
    fail "no warning within 5 s that the certificate of 127.0.0.1:$PC expires in 3 days (cert_warn_days 14)"
pass "expiry warned (default cert_warn_days 14, tls from upstream): $(lines "$PROXY_LOG" "127.0.0.1:$PC" "$LOG_EXPIRE" | head -n1 | sed 's/.* roundhouse//')"
sleep_ms $((HC_MS * 3 / 2))
[[ -z $(lines "$PROXY_LOG" "127.0.0.1:$PA" "$LOG_EXPIRE") ]] ||
    fail "a certificate valid for 30 days was warned about: $(lines "$PROXY_LOG" "127.0.0.1:$PA" "$LOG_EXPIRE")"
for i in 1 2; do
    req "http://127.0.0.1:$PY/"
    assert_status 200 "request $i to the backends with the expiring certificate"
done
pass "a certificate valid for 30 days is not warned about; the expiring one still serves"

alloc_port PZ
INI_HC_EXTRA="cert_warn_days = 2" write_ini "$E2E_TMP/warn2.ini" "$PZ" "$PC" "${TLS_UPSTREAM[@]}"
start_proxy "$E2E_TMP/warn2.ini" proxy-warn2
sleep_ms $((HC_MS * 26 / 10))
[[ -z $(lines "$PROXY_LOG" "127.0.0.1:$PC" "$LOG_EXPIRE") ]] ||
    fail "cert_warn_days = 2 warned about a certificate valid for 3 days: $(lines "$PROXY_LOG" "127.0.0.1:$PC" "$LOG_EXPIRE")"
req "http://127.0.0.1:$PZ/"
assert_status 200 "request with cert_warn_days = 2"
pass "cert_warn_days = 2: no warning for a certificate valid for 3 days"

# ---------------------------------------------------------------- tls = false
# plain TCP probes: the plain backend stays up for health purposes (requests to it would fail
# the upstream handshake; not checked here). A port where nothing listens shows the probes run.
alloc_port PDEAD
alloc_port PW
INI_HC_EXTRA="tls = false" write_ini "$E2E_TMP/plain-probes.ini" "$PW" "$PA $PB $PDEAD" "${TLS_UPSTREAM[@]}"
start_proxy "$E2E_TMP/plain-probes.ini" proxy-plain-probes
wait_until 5 has_line "$PROXY_LOG" "127.0.0.1:$PDEAD" "$LOG_DOWN" ||
    fail "health probes with tls = false did not mark the closed port 127.0.0.1:$PDEAD down within 5 s"
sleep_ms $((HC_MS * 22 / 10))
[[ -z $(lines "$PROXY_LOG" "127.0.0.1:$PB" "$LOG_DOWN") ]] ||
    fail "tls = false: the plain backend was marked down: $(lines "$PROXY_LOG" "127.0.0.1:$PB" "$LOG_DOWN")"
[[ -z $(lines "$PROXY_LOG" "127.0.0.1:$PA" "$LOG_DOWN") ]] ||
    fail "tls = false: the TLS backend was marked down: $(lines "$PROXY_LOG" "127.0.0.1:$PA" "$LOG_DOWN")"
pass "tls = false: plain probes keep the plain backend up (closed port down: $(lines "$PROXY_LOG" "127.0.0.1:$PDEAD" "$LOG_DOWN" | head -n1 | sed 's/.* roundhouse//'))"
