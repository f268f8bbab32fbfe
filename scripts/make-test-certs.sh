#!/usr/bin/env bash
# Test certificates for tests/tls (EC P-256, valid for 2 days), written into DIR:
#   ca.pem ca.key            the test CA
#   server.pem server.key    CN=localhost, SAN DNS:localhost, IP:127.0.0.1, signed by the CA
#   client.pem client.key    CN=device-1, clientAuth, signed by the CA
#   rogue-ca.pem rogue.pem rogue.key   a second CA and a client certificate signed by it
#                            (untrusted by the server)
# Usage: scripts/make-test-certs.sh DIR     (needs the openssl command)
set -euo pipefail
dir=${1:?usage: make-test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
ossl() { openssl "$@" 2>/dev/null; }
key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
ca() { # name subject
  key "$1.key"
  ossl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 2 -out "$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() { # name subject ca ext
  key "$1.key"
  ossl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf '%s\n' "$4" >"$1.ext"
  ossl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem"
  rm -f "$1.csr" "$1.ext"
}
ca ca "weft test CA"
ca rogue-ca "rogue CA"
leaf server localhost ca \
  "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
leaf client device-1 ca "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
leaf rogue device-2 rogue-ca "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
rm -f ./*.srl
