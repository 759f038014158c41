#!/usr/bin/env bash
# Local TLS material for the secure side of the stack and the TLS end-to-end run, made once
# with openssl into $NEWSROOM_RUN_DIR/tls (default .run/tls):
#   ca.pem / ca.key            a throwaway CA (10 days; made again when it expires)
#   server.pem / server.key    localhost and 127.0.0.1, signed by the CA: the services' gRPC
#                              servers, the broker's SASL_SSL listener, Redis's TLS port
#   client.pem / client.key    a client certificate (mTLS between services and from the tests)
#   server.p12                 the server's key and chain for the broker (password below)
# Nothing here is a secret worth keeping: it never leaves this machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR="${NEWSROOM_RUN_DIR:-$ROOT/.run}/tls"
P12_PASSWORD=newsroom-local-tls
mkdir -p "$DIR"
cd "$DIR"
if [ -f server.p12 ] && openssl x509 -checkend 86400 -noout -in ca.pem >/dev/null 2>&1; then
  exit 0
fi
log() { printf '\033[1mtls:\033[0m %s\n' "$*" >&2; }
log "making a local CA and certificates in $DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 10 \
  -subj "/CN=Newsroom local CA" -keyout ca.key -out ca.pem 2>/dev/null
for name in server client; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=newsroom-$name" -keyout "$name.key" -out "$name.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=%s\n' \
    "$([ $name = server ] && echo serverAuth,clientAuth || echo clientAuth)" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 10 \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  # PKCS #8, which every client here reads.
  openssl pkcs8 -topk8 -nocrypt -in "$name.key" -out "$name.key.p8" && mv "$name.key.p8" "$name.key"
  rm -f "$name.csr" "$name.ext"
done
openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name broker \
  -out server.p12 -password "pass:$P12_PASSWORD"
chmod 600 ./*.key
