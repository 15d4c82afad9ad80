#!/usr/bin/env bash
# `make certs`: a development CA and a server certificate signed by it, for the optional TLS
# (docs/protocol.md, "TLS"). Writes into the folder given (default certs/, git-ignored):
#   ca.crt      the CA the clients trust (CLI_TLS_CA)
#   ca.key      the CA's private key (mode 0600; only needed to sign another server certificate)
#   server.crt  the server's certificate (SERVER_TLS_CERT), SAN localhost, server, server1..server16
#               (the compose services of ./generar-compose.sh --servers S), 127.0.0.1
#   server.key  its private key (mode 0600; SERVER_TLS_KEY)
# Existing files are kept: delete the folder to make new ones. For development and tests
# only; in production use certificates from your own CA.
set -euo pipefail
OUT="${1:-certs}"
DAYS="${CERT_DAYS:-825}"
command -v openssl >/dev/null || { echo "make-certs: openssl is not installed; install it (apt-get install openssl)" >&2; exit 1; }
if [[ -f "$OUT/ca.crt" && -f "$OUT/server.crt" && -f "$OUT/server.key" ]]; then
  echo "certs in $OUT/ already exist (kept); delete $OUT/ to make new ones"
  exit 0
fi
umask 077
mkdir -p "$OUT"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
EC=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

openssl req -x509 "${EC[@]}" -keyout "$TMP/ca.key" -out "$TMP/ca.crt" -days "$DAYS" \
  -subj "/CN=Loteria development CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req "${EC[@]}" -keyout "$TMP/server.key" -out "$TMP/server.csr" -subj "/CN=server" 2>/dev/null
NAMES="DNS:localhost,DNS:server$(printf ',DNS:server%d' $(seq 1 16)),IP:127.0.0.1"
printf '%s\n' "subjectAltName=$NAMES" 'basicConstraints=CA:FALSE' \
  'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' > "$TMP/server.ext"
openssl x509 -req -in "$TMP/server.csr" -CA "$TMP/ca.crt" -CAkey "$TMP/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
  -days "$DAYS" -extfile "$TMP/server.ext" -out "$TMP/server.crt" 2>/dev/null
openssl verify -CAfile "$TMP/ca.crt" "$TMP/server.crt" >/dev/null

chmod 644 "$TMP/ca.crt" "$TMP/server.crt"
chmod 600 "$TMP/ca.key" "$TMP/server.key"
mv "$TMP/ca.crt" "$TMP/ca.key" "$TMP/server.crt" "$TMP/server.key" "$OUT/"
echo "certs in $OUT/: ca.crt (CLI_TLS_CA), server.crt + server.key (SERVER_TLS_CERT, SERVER_TLS_KEY), valid $DAYS days, SAN localhost, server, server1..server16, 127.0.0.1"
