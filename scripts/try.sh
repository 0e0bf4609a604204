#!/bin/bash
# Builds Berth, starts berthd on a private socket, makes a busybox image from Debian's
# busybox-static (no registry needed) and runs a container from it, then stops berthd.
# Uses the docker CLI when installed (DOCKER_HOST pointed at berthd), curl otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
scripts/deps.sh
command -v curl >/dev/null || { apt-get install -y -qq curl >/dev/null; }
cargo build --release --locked -q -p berth-daemon -p berth-shim -p berth-runtime-cli
bin=$PWD/target/release
work=$(mktemp -d /tmp/berth-try.XXXXXX)
sock=$work/berth.sock
"$bin/berthd" -H "unix://$sock" --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/berthd.pid" 2>"$work/berthd.log" &
berthd=$!
cleanup() { kill "$berthd" 2>/dev/null; wait "$berthd" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

# A busybox root filesystem as an image.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$work/rootfs/bin/$a" ] || ln -s busybox "$work/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .

if command -v docker >/dev/null; then
  export DOCKER_HOST=unix://$sock
  docker import --change 'CMD ["sh"]' "$work/busybox.tar" busybox:latest
  docker run --rm busybox sh -c 'echo "hello from a Berth container: $(hostname), pid $$, $(id)"'
else
  api() { curl -sS --unix-socket "$sock" "$@"; }
  api -X POST --data-binary @"$work/busybox.tar" "http://berth/images/create?fromSrc=-&repo=busybox&tag=latest&changes=CMD%20%5B%22sh%22%5D"
  id=$(api -X POST -H 'Content-Type: application/json' \
    -d '{"Image":"busybox","Cmd":["sh","-c","echo hello from a Berth container: $(hostname), pid $$, $(id)"]}' \
    http://berth/containers/create | sed 's/.*"Id":"\([0-9a-f]*\)".*/\1/')
  api -X POST "http://berth/containers/$id/start"
  api -X POST "http://berth/containers/$id/wait" >/dev/null
  api "http://berth/containers/$id/logs?stdout=1&stderr=1" | tail -c +9
  api -X DELETE "http://berth/containers/$id"
fi
