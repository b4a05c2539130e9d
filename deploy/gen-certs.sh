#!/usr/bin/env bash
# deploy/gen-certs.sh — makes the webhook's TLS material with the openssl CLI: a CA and a serving
# certificate for remora-injector.<namespace>.svc signed by it.
#
#   deploy/gen-certs.sh [--out DIR] [--namespace NS] [--service NAME] [--days N]
#                       [--extra-san DNS:name|IP:addr]... [--webhook FILE]
#
# Writes DIR/ca.crt, DIR/ca.key, DIR/tls.crt, DIR/tls.key (default DIR: ./remora-certs). With
# --webhook FILE, prints FILE with its caBundle placeholder (Q0FfQlVORExFCg==, which is base64 of
# "CA_BUNDLE", so the unfilled file still validates) replaced by the CA, ready
# for `kubectl apply -f -`. Then create the secret the injector mounts:
#   kubectl -n remora-system create secret tls remora-injector-tls \
#       --cert=DIR/tls.crt --key=DIR/tls.key
# Re-running with an existing DIR/ca.key reuses the CA, so renewing the serving certificate keeps
# the caBundle valid; the injector picks up replaced files without a restart.
set -euo pipefail

out=./remora-certs
ns=remora-system
svc=remora-injector
days=365
webhook=
sans=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --namespace) ns=$2; shift 2 ;;
    --service) svc=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --extra-san) sans+=("$2"); shift 2 ;;
    --webhook) webhook=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gen-certs.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$days" in ''|*[!0-9]*) echo "gen-certs.sh: --days must be a number" >&2; exit 2 ;; esac

mkdir -p "$out"
umask 077
if [ ! -s "$out/ca.key" ] || [ ! -s "$out/ca.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$((days * 3))" \
    -subj "/CN=remora-injector-ca" -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
fi

san="DNS:$svc,DNS:$svc.$ns,DNS:$svc.$ns.svc,DNS:$svc.$ns.svc.cluster.local"
for s in "${sans[@]+"${sans[@]}"}"; do san="$san,$s"; done
ext=$(mktemp)
csr=$(mktemp)
trap 'rm -f "$ext" "$csr"' EXIT
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' \
  "$san" >"$ext"
# Written beside the final names, then renamed: a reader never sees half a file.
openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$svc.$ns.svc" \
  -keyout "$out/tls.key.new" -out "$csr" 2>/dev/null
openssl x509 -req -in "$csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
  -days "$days" -sha256 -extfile "$ext" -out "$out/tls.crt.new" 2>/dev/null
chmod 644 "$out/tls.crt.new" "$out/ca.crt"
mv "$out/tls.key.new" "$out/tls.key"
mv "$out/tls.crt.new" "$out/tls.crt"

if [ -n "$webhook" ]; then
  bundle=$(base64 -w0 <"$out/ca.crt")
  grep -q "caBundle: Q0FfQlVORExFCg==" "$webhook" || { echo "gen-certs.sh: $webhook has no caBundle placeholder" >&2; exit 1; }
  sed "s|caBundle: Q0FfQlVORExFCg==|caBundle: $bundle|" "$webhook"
else
  echo "gen-certs.sh: wrote $out/ca.crt $out/tls.crt $out/tls.key (SAN $san)" >&2
fi
