#!/bin/sh
# make-cert.sh DIR: self-signed EC certificate for CN=localhost
# (subjectAltName DNS:localhost, IP:127.0.0.1), valid 2 days.
# Writes DIR/cert.pem and DIR/key.pem.  Quiet on success.
set -eu
if [ $# -ne 1 ]; then
  echo "usage: make-cert.sh DIR" >&2
  exit 100
fi
dir=$1
mkdir -p "$dir"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -days 2 -subj /CN=localhost \
    -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" >"$log" 2>&1; then
  cat "$log" >&2
  echo "make-cert.sh: openssl req failed" >&2
  exit 111
fi
chmod 600 "$dir/key.pem"
