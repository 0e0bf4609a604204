#!/bin/bash
# Build benchmark (issue 8): a cold build (--no-cache) and a fully cached rebuild of the
# same Dockerfile (FROM busybox, five RUNs, a COPY of 10 MB, ENV/WORKDIR/CMD), berthd
# against dockerd's classic builder, side by side in one run, both driven by the same
# docker CLI. Prints the median of each and the berth/docker ratio.
#
# Goals: cached rebuild <= 1/3 of docker's time; cold build no slower (<= 1.0).
#
# Usage: sudo bash bench/build.sh        (RUNS=5 for more rounds; BIN=dir of binaries)
#
# Everything both daemons store lives under one temporary directory, removed at the end
# with the processes this script started (by pid). Engines alternate order each round.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
bin=${BIN:-$PWD/target/release}
DOCKER=${DOCKER_CLI:-$(command -v docker || echo /usr/local/bin/docker)}
W=$(mktemp -d /var/tmp/berth-bench-build.XXXXXX)
berth_bridge=bbld$$
pids=()
declare -A T

log() { printf '\n== %s\n' "$*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip link del "$berth_bridge" 2>/dev/null || true
  nft delete table ip "berth_$berth_bridge" 2>/dev/null || true
  grep " $W" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

if [ ! -x "$bin/berthd" ]; then
  log "building Berth (release)"
  CARGO_TARGET_DIR=$(dirname "$bin") cargo build --release --locked -q \
    -p berth-daemon -p berth-shim -p berth-runtime-cli
fi
command -v dockerd >/dev/null || { echo "dockerd is missing: apt-get install docker.io" >&2; exit 1; }

ctl() { local e=$1; shift; DOCKER_BUILDKIT=0 "$DOCKER" -H "unix://$W/$e/sock" "$@"; }

wait_for() {
  local i
  for i in $(seq 300); do ctl "$1" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$1 did not come up" >&2
  exit 1
}

mkdir -p "$W/berth" "$W/docker" "$W/rootfs/bin" "$W/rootfs/etc" "$W/ctx"
"$bin/berthd" -H "unix://$W/berth/sock" --data-root "$W/berth/data" --exec-root "$W/berth/exec" \
  --pidfile "$W/berth/pid" --bridge "$berth_bridge" >"$W/berth/log" 2>&1 &
pids+=($!)
echo '{}' >"$W/docker/daemon.json"
dockerd --config-file "$W/docker/daemon.json" --data-root "$W/docker/root" --exec-root "$W/docker/exec" \
  -H "unix://$W/docker/sock" --pidfile "$W/docker/pid" --iptables=false --bridge=none \
  >"$W/docker/log" 2>&1 &
pids+=($!)
wait_for berth
wait_for docker

cp /bin/busybox "$W/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$W/rootfs/bin/$a" ] || ln -s busybox "$W/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$W/rootfs/etc/passwd"
tar -C "$W/rootfs" -cf "$W/busybox.tar" .
for e in berth docker; do ctl "$e" import "$W/busybox.tar" busybox:latest >/dev/null; done

head -c $((5 << 20)) /dev/urandom >"$W/ctx/random.bin"
head -c $((4 << 20)) /dev/urandom | base64 >"$W/ctx/text.b64"
cat >"$W/ctx/Dockerfile" <<'EOF'
FROM busybox
ENV APP=/app LEVEL=3
WORKDIR /app
RUN mkdir -p /app/data && echo one > /app/data/1
RUN for i in 1 2 3 4 5 6 7 8 9 10; do echo $i >> /app/data/count; done
COPY . /app/src/
RUN ls -l /app/src > /app/listing
RUN dd if=/dev/zero of=/app/data/zeros bs=1k count=512 2>/dev/null
RUN cat /app/data/count | wc -l > /app/data/lines
CMD ["cat", "/app/data/lines"]
EOF

timed() { # OP ENGINE CMD...
  local op=$1 e=$2 t0 t1
  shift 2
  t0=$(now_ms)
  "$@" >/dev/null 2>&1
  t1=$(now_ms)
  T[$op/$e]+="$((t1 - t0)) "
}

for n in $(seq "$RUNS"); do
  log "round $n"
  if [ $((n % 2)) = 0 ]; then order="berth docker"; else order="docker berth"; fi
  for e in $order; do
    timed cold "$e" ctl "$e" build --no-cache -t bench:latest "$W/ctx"
    timed cached "$e" ctl "$e" build -t bench:latest "$W/ctx"
    [ "$(ctl "$e" run --rm --network none bench:latest)" = 10 ] || { echo "$e: wrong image" >&2; exit 1; }
  done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf '\n%-16s %10s %10s %8s   %s\n' build "berth ms" "docker ms" ratio goal
for op in cold cached; do
  b=$(median "${T[$op/berth]}")
  d=$(median "${T[$op/docker]}")
  goal="<= 1.0"
  [ "$op" = cached ] && goal="<= 0.333"
  printf '%-16s %10s %10s %8s   %s\n' "$op" "$b" "$d" "$(awk -v b="$b" -v d="$d" 'BEGIN {printf "%.3f", b / d}')" "$goal"
done
printf '\n(every time: %s)\n' "$(for k in "${!T[@]}"; do printf '%s=[%s] ' "$k" "${T[$k]% }"; done)"
