#!/usr/bin/env bash
# A self-signed certificate and key for the demo over HTTPS: DIR/cert.pem and DIR/key.pem,
# EC P-256, CN=localhost with SAN DNS:localhost and IP:127.0.0.1, valid for 365 days.
# Usage: scripts/make-self-signed.sh DIR     (needs the openssl command)
# Browsers and curl will not trust it: use curl --cacert DIR/cert.pem, or accept the warning.
set -euo pipefail
dir=${1:?usage: make-self-signed.sh DIR}
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 365 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
chmod 600 "$dir/key.pem"
echo "wrote $dir/cert.pem and $dir/key.pem"
