#!/bin/bash
# Installs Berth on this machine and runs a first container:
# builds the release binaries, installs them into /usr/local/bin (berth, berthd,
# berth-shim, berth-runtime), starts berthd on /run/berth/berth.sock unless one already
# answers there, makes a busybox image from Debian's busybox-static (no registry needed)
# and runs a container from it with the berth CLI. berthd keeps running afterwards:
# `berth ps`, `berth run -it busybox sh`, or the docker CLI with
# DOCKER_HOST=unix:///run/berth/berth.sock. Stop it with: kill "$(cat /run/berth/berthd.pid)"
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
scripts/deps.sh
cargo build --release --locked -q -p berth-daemon -p berth-shim -p berth-runtime-cli -p berth-cli
for b in berth berthd berth-shim berth-runtime; do
  install -m 0755 "target/release/$b" "/usr/local/bin/$b"
done
export BERTH_HOST=unix:///run/berth/berth.sock
if ! berth version >/dev/null 2>&1; then
  # Its own session and no tie to our stdio: it outlives this script and any pipe.
  setsid berthd </dev/null >>/var/log/berthd.log 2>&1 &
  for _ in $(seq 100); do berth version >/dev/null 2>&1 && break; sleep 0.05; done
  echo "berthd started (pid $(cat /run/berth/berthd.pid), log /var/log/berthd.log)"
fi

if ! berth image inspect busybox:latest >/dev/null 2>&1; then
  work=$(mktemp -d /tmp/berth-try.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/root"
  cp /bin/busybox "$work/rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do [ -e "$work/rootfs/bin/$a" ] || ln -s busybox "$work/rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$work/rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/rootfs/etc/group"
  tar -C "$work/rootfs" -cf "$work/busybox.tar" .
  berth import --change 'CMD ["sh"]' "$work/busybox.tar" busybox:latest
fi
berth run --rm busybox sh -c 'echo "hello from a Berth container: $(hostname), pid $$, $(id)"'
