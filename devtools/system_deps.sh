#!/usr/bin/env bash
# Installs the Debian packages that the tests start for real: Chromium for the
# widget's browser tests, PostgreSQL and Redis for the durability tests.
# Needs root (CI runs as root) or sudo. Does nothing when they are present.
set -euo pipefail
PACKAGES=(chromium postgresql redis-server)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
