#!/usr/bin/env bash
# Installs everything PacsGuard and its test suite need on a fresh Debian machine:
# DCMTK and Orthanc (real peers for interop tests), xmllint (checks exported audit XML), rsyslog
# with gnutls (the SIEM receiver in the syslog-TLS test), chromium (the console and passkey tests, driven by
# playwright-core; the OHIF test runs its prebuilt viewer in it) and nftables (checks the exported firewall ruleset with `nft -c`),
# then the npm packages from the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in dcmtk orthanc orthanc-dicomweb libxml2-utils rsyslog rsyslog-gnutls chromium nftables; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The Debian orthanc and rsyslog packages may start system services; tests start their own instances.
if command -v service >/dev/null 2>&1; then
  service orthanc stop >/dev/null 2>&1 || true
  service rsyslog stop >/dev/null 2>&1 || true
fi

npm ci --no-audit --no-fund --loglevel=error
# OHIF Viewer's prebuilt application for test/interop/ohif.int.test.ts: fetched once with npm pack,
# checked against the registry's integrity, kept in node_modules/.cache (never committed).
node --import tsx -e "import('./test/support/ohif.ts').then((m) => m.ohifDist())"
