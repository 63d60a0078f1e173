#!/bin/sh
# Runs inside the image build (image/base/Dockerfile): adds to the system trust store the
# certificates of the build host's bundle ($1) that Debian's bundle lacks, one file each in
# /usr/local/share/ca-certificates, then runs update-ca-certificates. The host's bundle is
# Debian's plus its own CAs (e.g. a TLS-inspecting proxy's): only those are added.
set -eu
bundle=$1
known=/etc/ssl/certs/ca-certificates.crt
out=/usr/local/share/ca-certificates/sandboxd-build-host
tr -d '\r' <"$bundle" | awk -v known="$known" -v out="$out" '
  BEGIN {
    while ((getline line < known) > 0) {
      if (line ~ /^-----BEGIN CERTIFICATE-----/) pem = ""
      pem = pem line "\n"
      if (line ~ /^-----END CERTIFICATE-----/) have[pem] = 1
    }
  }
  /^-----BEGIN CERTIFICATE-----/ { pem = ""; inside = 1 }
  inside { pem = pem $0 "\n" }
  /^-----END CERTIFICATE-----/ {
    inside = 0
    if (!(pem in have)) { n++; f = out "-" n ".crt"; printf "%s", pem > f; close(f) }
  }
  END { print "add-host-ca: " n + 0 " certificate(s) of the build host added" }'
update-ca-certificates
