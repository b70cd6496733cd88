#!/usr/bin/env bash
# Prepares headless Chromium to present an operator's client certificate to the console test:
#   console-browser-setup.sh HOME_DIR CERT_PEM KEY_PEM CA_PEM POLICY_FILE PATTERN ISSUER_CN
# 1. Chromium itself (tests/browser/ensure-chromium.sh installs Debian's package when missing).
# 2. NSS tools (`pk12util`, `certutil` from Debian's libnss3-tools) and `openssl` when missing.
# 3. A CJK font for screenshots when none is installed (optional).
# 4. A PKCS#12 file of the certificate and key (openssl), then an NSS database in HOME_DIR/.pki/nssdb (where Chromium on Linux looks) holding the
#    operator's certificate and key (PKCS#12, empty password) and trusting the test CA.
# 5. A managed Chromium policy (AutoSelectCertificateForUrls) selecting that certificate for
#    PATTERN only, issued by ISSUER_CN: this Chromium has no command-line switch for it, and
#    without it headless Chromium waits for a certificate picker nobody can click.
# Prints the browser's path on success; exits non-zero (the test then skips loudly) otherwise.
set -euo pipefail
home="$1" cert="$2" key="$3" ca="$4" policy="$5" pattern="$6" issuer="$7"
here="$(cd "$(dirname "$0")" && pwd)"
chromium="$(bash "$here/../browser/ensure-chromium.sh")"
missing=()
command -v pk12util >/dev/null 2>&1 && command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "cannot install ${missing[*]}: needs root and apt-get" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq --no-install-recommends "${missing[@]}" || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; } >&2
fi
# A CJK font for the screenshots (the records are in Chinese); pages load without it.
if ! fc-list 2>/dev/null | grep -qi "cjk\|wqy\|zenhei"; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-wqy-zenhei >&2 \
      || echo "no CJK font could be installed: screenshots show boxes for Chinese text" >&2
  fi
fi
p12="$home/operator.p12"
mkdir -p "$home"
openssl pkcs12 -export -in "$cert" -inkey "$key" -out "$p12" -passout pass: -name operator >&2
db="$home/.pki/nssdb"
mkdir -p "$db"
certutil -N -d "sql:$db" --empty-password >&2
pk12util -i "$p12" -d "sql:$db" -W '' >&2
certutil -A -n "yrdx test CA" -t "C,," -i "$ca" -d "sql:$db" >&2
mkdir -p "$(dirname "$policy")" 2>/dev/null || { echo "cannot write the Chromium policy $policy" >&2; exit 1; }
printf '{"AutoSelectCertificateForUrls": ["{\\"pattern\\":\\"%s\\",\\"filter\\":{\\"ISSUER\\":{\\"CN\\":\\"%s\\"}}}"]}\n' \
  "$pattern" "$issuer" > "$policy" || { echo "cannot write the Chromium policy $policy" >&2; exit 1; }
echo "$chromium"
