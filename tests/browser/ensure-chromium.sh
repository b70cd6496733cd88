#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the report-in-a-browser test, if it is missing.
# Prints the browser's path on success; exits non-zero (the test then skips loudly) when it cannot.
set -euo pipefail
for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then command -v "$b"; exit 0; fi
done
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "cannot install chromium: needs root and apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
{ apt-get install -y --no-install-recommends chromium || { apt-get update && apt-get install -y --no-install-recommends chromium; }; } >&2
command -v chromium
