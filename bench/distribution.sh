#!/bin/bash
# Distribution benchmark (issue 5): push and pull of a ~100 MB image in 4 layers through a
# local registry (Debian's docker-registry, the registry:2 of the seeds), and save and load
# of it: berthd and a reference dockerd side by side in one run, both driven by the same
# docker CLI. Prints the median of each operation and the berth/docker ratio.
#
# Goals: pull <= 0.5 of docker's time; push, save and load <= 1.0.
#
# Usage: sudo bash bench/distribution.sh        (RUNS=5 for more rounds; BIN=dir of binaries)
#
# Fairness: each round starts a fresh registry, so every push uploads every layer and no
# engine finds the other's blobs; the order of the engines alternates between rounds;
# before a pull or load the engine has removed the image (and, for Berth, its snapshots and
# blobs go with it). Everything both daemons and the registry store lives under one
# temporary directory, removed at the end, with the processes this script started (by pid).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
bin=${BIN:-$PWD/target/release}
DOCKER=${DOCKER_CLI:-$(command -v docker || echo /usr/local/bin/docker)}
W=$(mktemp -d /var/tmp/berth-bench-dist.XXXXXX)
berth_bridge=bdist$$
pids=()
declare -A T # T[op/engine]="ms ms ms"

log() { printf '\n== %s\n' "$*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip link del "$berth_bridge" 2>/dev/null || true
  nft delete table ip "berth_$berth_bridge" 2>/dev/null || true
  # dockerd's containerd leaves mounts under its root when killed mid-way.
  grep " $W" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

install_deps() {
  local pkgs=()
  command -v docker-registry >/dev/null || pkgs+=(docker-registry)
  command -v dockerd >/dev/null || pkgs+=(docker.io)
  dpkg -s busybox-static >/dev/null 2>&1 || pkgs+=(busybox-static)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
  if [ ! -x "$bin/berthd" ]; then
    log "building Berth (release)"
    CARGO_TARGET_DIR=$(dirname "$bin") cargo build --release --locked -q \
      -p berth-daemon -p berth-shim -p berth-runtime-cli
  fi
}

wait_for() { # CLI-ARGS... : waits until `docker version` answers
  local i
  for i in $(seq 300); do "$@" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "daemon did not come up: $*" >&2
  exit 1
}

start_daemons() {
  mkdir -p "$W/berth" "$W/docker"
  "$bin/berthd" -H "unix://$W/berth/sock" --data-root "$W/berth/data" \
    --exec-root "$W/berth/exec" --pidfile "$W/berth/pid" --bridge "$berth_bridge" \
    >"$W/berth/log" 2>&1 &
  pids+=($!)
  echo '{}' >"$W/docker/daemon.json"
  dockerd --config-file "$W/docker/daemon.json" --data-root "$W/docker/root" \
    --exec-root "$W/docker/exec" -H "unix://$W/docker/sock" --pidfile "$W/docker/pid" \
    --iptables=false --bridge=none >"$W/docker/log" 2>&1 &
  pids+=($!)
  wait_for "$DOCKER" -H "unix://$W/berth/sock"
  wait_for "$DOCKER" -H "unix://$W/docker/sock"
}

ctl() { local e=$1; shift; "$DOCKER" -H "unix://$W/$e/sock" "$@"; }

# A ~100 MB image in 4 layers, as a docker-archive: busybox in the first; in each, 12 MiB
# of random bytes (incompressible) and 13 MiB of base64 text (compressible, like binaries).
make_image() {
  local i l cfg diff_ids="" layers=""
  for i in 1 2 3 4; do
    l=$W/img/l$i
    mkdir -p "$l/data$i"
    if [ "$i" = 1 ]; then
      mkdir -p "$l/bin" "$l/etc"
      cp /bin/busybox "$l/bin/busybox"
      ln -s busybox "$l/bin/sh"
      ln -s busybox "$l/bin/true"
      printf 'root:x:0:0:root:/root:/bin/sh\n' >"$l/etc/passwd"
    fi
    head -c $((12 << 20)) /dev/urandom >"$l/data$i/random.bin"
    head -c $((10 << 20)) /dev/urandom | base64 >"$l/data$i/text.b64"
    tar -C "$l" -cf "$W/img/layer$i.tar" .
    diff_ids+="${diff_ids:+,}\"sha256:$(sha256sum "$W/img/layer$i.tar" | cut -c1-64)\""
    layers+="${layers:+,}\"layer$i.tar\""
  done
  cfg='{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":['$diff_ids']},"history":[]}'
  printf '%s' "$cfg" >"$W/img/config.json"
  printf '[{"Config":"config.json","RepoTags":["bench:latest"],"Layers":[%s]}]' "$layers" \
    >"$W/img/manifest.json"
  tar -C "$W/img" -cf "$W/bench.tar" manifest.json config.json layer1.tar layer2.tar layer3.tar layer4.tar
  rm -rf "$W"/img/l?
  ls -l "$W/bench.tar" | awk '{printf "   image archive: %.1f MB\n", $5 / 1e6}'
}

start_registry() { # fresh storage; sets PORT and REG_PID
  local d=$W/registry.$1
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$d"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$d/data" "$PORT" >"$d/config.yml"
  docker-registry serve "$d/config.yml" >"$d/log" 2>&1 &
  REG_PID=$!
  pids+=("$REG_PID")
  local i
  for i in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && return; sleep 0.1; done
  echo "registry did not start" >&2
  exit 1
}

timed() { # OP ENGINE CMD...: runs CMD, records its wall time in ms
  local op=$1 e=$2 t0 t1
  shift 2
  t0=$(now_ms)
  "$@" >/dev/null
  t1=$(now_ms)
  T[$op/$e]+="$((t1 - t0)) "
}

round() { # N
  local n=$1 e order
  if [ $((n % 2)) = 0 ]; then order="berth docker"; else order="docker berth"; fi
  start_registry "$n"
  for e in $order; do
    local repo="localhost:$PORT/bench-$e:v1"
    ctl "$e" tag bench:latest "$repo"
    timed push "$e" ctl "$e" push "$repo"
    ctl "$e" rmi "$repo" bench:latest >/dev/null
    timed pull "$e" ctl "$e" pull "$repo"
    ctl "$e" tag "$repo" bench:latest
    ctl "$e" rmi "$repo" >/dev/null
    timed save "$e" ctl "$e" save -o "$W/saved-$e.tar" bench:latest
    ctl "$e" rmi bench:latest >/dev/null
    timed load "$e" ctl "$e" load -i "$W/saved-$e.tar"
    rm -f "$W/saved-$e.tar"
    ctl "$e" run --rm --network none bench:latest true
  done
  kill "$REG_PID"
  wait "$REG_PID" 2>/dev/null || true
  rm -rf "$W/registry.$n"
}

# Each engine loads the other's archive and runs the image: the formats agree.
interop() {
  ctl berth save -o "$W/from-berth.tar" bench:latest
  ctl docker save -o "$W/from-docker.tar" bench:latest
  ctl berth rmi bench:latest >/dev/null
  ctl docker rmi bench:latest >/dev/null
  ctl berth load -i "$W/from-docker.tar" >/dev/null
  ctl docker load -i "$W/from-berth.tar" >/dev/null
  ctl berth run --rm --network none bench:latest true
  ctl docker run --rm --network none bench:latest true
  rm -f "$W/from-berth.tar" "$W/from-docker.tar"
  note_interop="berth loads docker's save and docker loads berth's: ok"
}

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

report() {
  local op b d goal
  printf '\n%-6s %12s %12s %8s   %s\n' op "berth ms" "docker ms" ratio goal
  for op in push pull save load; do
    b=$(median "${T[$op/berth]}")
    d=$(median "${T[$op/docker]}")
    goal="<= 1.0"
    [ "$op" = pull ] && goal="<= 0.5"
    printf '%-6s %12s %12s %8s   %s\n' "$op" "$b" "$d" "$(awk -v b="$b" -v d="$d" 'BEGIN {printf "%.3f", b / d}')" "$goal"
  done
  printf '\n(runs: %s; every time: %s)\n' "$RUNS" "$(for k in "${!T[@]}"; do printf '%s=[%s] ' "$k" "${T[$k]% }"; done)"
}

install_deps
log "versions: $("$bin/berthd" --version 2>/dev/null | head -1), $(dockerd --version), docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}')"
start_daemons
log "making the image"
make_image
ctl berth load -i "$W/bench.tar" >/dev/null
ctl docker load -i "$W/bench.tar" >/dev/null
for n in $(seq "$RUNS"); do
  log "round $n"
  round "$n"
done
interop
report
printf '%s\n' "$note_interop"
