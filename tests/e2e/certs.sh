#!/usr/bin/env bash
# certs.sh DIR: the test PKI for the TLS scenarios, made with Debian's openssl at test time
# (nothing is committed). P-256 keys. Prints nothing on success; idempotent (a complete,
# still valid set in DIR is kept).
#
#   ca.pem/ca.key                  the test CA (CN roundhouse e2e CA)
#   backend.pem/backend.key        by the CA, SAN DNS:backend.test, IP:127.0.0.1, 30 days
#   soon.pem/soon.key              same SAN, by the CA, valid 3 days (cert_warn_days)
#   selfsigned.pem/selfsigned.key  SAN DNS:backend.test, self-signed (untrusted)
#   wrongname.pem/wrongname.key    by the CA, SAN DNS:other.test only
#   edge.pem/edge.key              by the CA, SAN DNS:localhost, IP:127.0.0.1
#   edge2.pem/edge2.key            by the CA, SAN DNS:second.test
# A mismatched pair is edge.pem with edge2.key.
set -euo pipefail

dir=${1:?usage: certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

names=(ca backend soon selfsigned wrongname edge edge2)

complete() {
    local n
    for n in "${names[@]}"; do
        [[ -s $n.pem && -s $n.key ]] || return 1
    done
    # soon.pem must still be valid for a day, the others for a week
    openssl x509 -noout -checkend 86400 -in soon.pem >/dev/null 2>&1 || return 1
    for n in ca backend selfsigned wrongname edge edge2; do
        openssl x509 -noout -checkend 604800 -in "$n.pem" >/dev/null 2>&1 || return 1
    done
}
if complete; then exit 0; fi

work=$(mktemp -d "$dir/.certs.XXXXXX")
trap 'rm -rf "$work"' EXIT
err=$work/openssl.err

run() { # run openssl quietly, show its stderr only on failure
    if ! openssl "$@" >/dev/null 2>"$err"; then
        echo "certs.sh: openssl $1 failed:" >&2
        cat "$err" >&2
        exit 1
    fi
}

cat >"$work/ext.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[backend]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:backend.test, IP:127.0.0.1
[selfsigned]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = DNS:backend.test
[wrongname]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:other.test
[edge]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1
[edge2]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:second.test
EOF

key() { run genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$1.key"; }
serial() { echo "0x$(openssl rand -hex 12)"; }

# signed NAME CN DAYS SECTION: a leaf signed by the CA
signed() {
    local n=$1 cn=$2 days=$3 sect=$4
    key "$n"
    run req -new -config "$work/ext.cnf" -key "$work/$n.key" -subj "/CN=$cn" -out "$work/$n.csr"
    run x509 -req -in "$work/$n.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -set_serial "$(serial)" \
        -days "$days" -sha256 -extfile "$work/ext.cnf" -extensions "$sect" -out "$work/$n.pem"
}

key ca
run req -x509 -new -config "$work/ext.cnf" -key "$work/ca.key" -subj "/CN=roundhouse e2e CA" \
    -days 60 -sha256 -extensions ca -set_serial "$(serial)" -out "$work/ca.pem"
signed backend backend.test 30 backend
signed soon backend.test 3 backend
signed wrongname other.test 30 wrongname
signed edge localhost 30 edge
signed edge2 second.test 30 edge2
key selfsigned
run req -x509 -new -config "$work/ext.cnf" -key "$work/selfsigned.key" -subj "/CN=backend.test" \
    -days 30 -sha256 -extensions selfsigned -set_serial "$(serial)" -out "$work/selfsigned.pem"

for n in "${names[@]}"; do
    chmod 600 "$work/$n.key"
    mv -f "$work/$n.key" "$work/$n.pem" .
done
