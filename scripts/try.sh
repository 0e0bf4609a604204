#!/bin/bash
# Builds berth-runtime, makes a busybox bundle and runs a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
scripts/deps.sh
cargo build --release --locked -p berth-runtime-cli
bin=$PWD/target/release/berth-runtime
bundle=$(mktemp -d /tmp/berth-try.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do ln -sf busybox "$bundle/rootfs/bin/$a"; done
cd "$bundle"
"$bin" spec
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from a berth container: $(hostname), pid $$; id"/' config.json
"$bin" run "try-$$"
