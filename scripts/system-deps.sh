#!/usr/bin/env bash
# Make sure the Debian packages the project needs are present; install them when apt is usable.
#   scripts/system-deps.sh demo   - what the server needs (Pango for PDFs, CJK fonts)
#   scripts/system-deps.sh test   - that plus Chromium (browser tests), poppler-utils, zbar-tools (QR codes), redis-server (shared rate limits),
#                                   nginx (the shipped site, tests/survey/test_deploy.py) and R's haven (r-cran-haven: R reads the exported .sav)
set -euo pipefail
purpose="${1:-test}"
packages=(libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk)
if [ "$purpose" = test ]; then
  packages+=(chromium poppler-utils zbar-tools redis-server nginx r-cran-haven)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing system packages: ${missing[*]}"
if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
  if [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; then
    export DEBIAN_FRONTEND=noninteractive
    if $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || \
       { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
      exit 0
    fi
  fi
fi
echo "Could not install them here. Run this, then try again:" >&2
echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
exit 1
