#!/usr/bin/env bash
# Installs Debian's Chromium (and a CJK font for the zh-CN cashier page) for the browser tests.
# Idempotent: does nothing when /usr/bin/chromium exists; runs `apt-get update` only when the
# package lists do not know the package yet. Playwright drives this binary through
# executable_path; `playwright install` (a download) is never used.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
PACKAGES=(chromium fonts-wqy-microhei fonts-liberation)

if [ -x "$CHROMIUM" ] && fc-list 2>/dev/null | grep -qi "wenquanyi"; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install_chromium.sh: need root (or sudo) to apt-get install ${PACKAGES[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
needs_update=0
for package in "${PACKAGES[@]}"; do
  candidate=$(apt-cache policy "$package" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    needs_update=1
  fi
done
if [ "$needs_update" -eq 1 ]; then
  $SUDO apt-get update -qq
fi
install() { $SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null; }
if ! install; then
  # Package lists that name a version the mirror no longer has: refresh them once and retry.
  $SUDO apt-get update -qq
  install
fi
"$CHROMIUM" --version 2>/dev/null
