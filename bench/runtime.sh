#!/bin/bash
# Container start latency: N sequential create→start→wait→delete cycles of /bin/true
# (`run`, which is exactly that), berth-runtime vs runc (and crun if installed), side by side
# in one run with hyperfine; then the library call path (what berth-shim uses), without the
# CLI's exec and argument parsing. Prints the ratio against runc.
# usage: sudo bench/runtime.sh [runs]   (needs: hyperfine, runc, busybox-static)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100}
for t in hyperfine runc; do command -v $t >/dev/null || { echo "install $t (apt-get install $t)" >&2; exit 1; }; done
cargo build --release --locked -q -p berth-runtime-cli -p berth-runtime --examples --bins
bin=$PWD/target/release/berth-runtime
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
cleanup() {
  for r in berth runc crun; do
    [ -d "$work/root-$r" ] && for id in $(ls "$work/root-$r" 2>/dev/null); do "$bin" --root "$work/root-$r" delete -f "$id" 2>/dev/null || true; done
  done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/"
ln -s busybox "$work/bundle/rootfs/bin/true"; ln -s busybox "$work/bundle/rootfs/bin/sh"
(cd "$work/bundle" && "$bin" spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"]["cgroupsPath"] = "/berth-bench"
json.dump(c, open(p, "w"), indent=1)
PY
cmds=(-n berth-runtime "$bin --root $work/root-berth run --bundle $work/bundle b1"
      -n runc "runc --root $work/root-runc run --bundle $work/bundle r1")
if command -v crun >/dev/null; then
  cmds+=(-n crun "crun --root $work/root-crun run --bundle $work/bundle c1")
fi
hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/h.json" "${cmds[@]}" >&2
python3 - "$work/h.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for k, v in r.items():
    print(f"{k:15s} {v:7.2f} ms per create+start+wait+delete")
print(f"ratio berth-runtime / runc: {r['berth-runtime'] / r['runc']:.2f}x")
if "crun" in r:
    print(f"ratio berth-runtime / crun: {r['berth-runtime'] / r['crun']:.2f}x")
PY
echo "library call path (no CLI exec, as berth-shim calls it):"
target/release/examples/lifecycle_bench "$work/bundle" "$work/root-lib" "$runs"
