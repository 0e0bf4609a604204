#!/bin/bash
# Installs what building and testing Berth needs on Debian (idempotent; needs root).
set -euo pipefail
pkgs=(busybox-static git libseccomp-dev pkg-config iproute2 procps tini nftables docker-registry curl openssl apache2-utils zstd bzip2 xz-utils)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  # Packages such as docker-registry start a service when installed; the tests start
  # their own, so keep the host as it was (unless it already has a policy of its own).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
