#!/bin/bash
# containerd drives berth-runtime as its runc: with Debian's containerd (private root, state
# and socket), `ctr run --runc-binary berth-runtime` runs a busybox image to completion,
# then a detached task gets an exec, a ps and a kill.
# usage: sudo tests/containerd.sh [path/to/berth-runtime]   (needs: containerd, busybox-static)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v containerd >/dev/null || { echo "install containerd (apt-get install containerd)" >&2; exit 1; }
rt=${1:-}
if [ -z "$rt" ]; then
  cargo build --release --locked -q -p berth-runtime-cli
  rt=$PWD/target/release/berth-runtime
fi
rt=$(readlink -f "$rt")
d=$(mktemp -d /tmp/berth-containerd.XXXXXX)
cpid=""
cleanup() {
  set +e
  if [ -S "$d/sock" ]; then
    ctr -a "$d/sock" -n berth task kill -s KILL t2 >/dev/null 2>&1
    ctr -a "$d/sock" -n berth task delete -f t2 >/dev/null 2>&1
    ctr -a "$d/sock" -n berth container delete t2 >/dev/null 2>&1
  fi
  [ -n "$cpid" ] && kill "$cpid" && wait "$cpid" 2>/dev/null
  # Unmount what containerd left under our directory, deepest first.
  grep " $d" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l
  rm -rf "$d"
}
trap cleanup EXIT

cat > "$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/sock"
TOML
containerd --config "$d/config.toml" > "$d/containerd.log" 2>&1 &
cpid=$!
for _ in $(seq 100); do [ -S "$d/sock" ] && break; sleep 0.1; done
[ -S "$d/sock" ] || { cat "$d/containerd.log"; echo "containerd did not start" >&2; exit 1; }

# An OCI image archive of a busybox rootfs, made here (no registry is reachable).
python3 - "$d" <<'PY'
import hashlib, io, json, os, sys, tarfile, gzip
d = sys.argv[1]
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    return h, data
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as t:
    for name in ["bin", "tmp", "proc", "sys", "dev", "etc"]:
        i = tarfile.TarInfo(name); i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
    t.add("/bin/busybox", arcname="bin/busybox")
    for a in ["sh", "echo", "cat", "sleep", "hostname", "id"]:
        i = tarfile.TarInfo("bin/" + a); i.type = tarfile.SYMTYPE; i.linkname = "busybox"; t.addfile(i)
raw = layer.getvalue()
diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
gz = gzip.compress(raw, mtime=0)
lh, _ = blob(gz)
config = json.dumps({"architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
ch, _ = blob(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + ch, "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + lh, "size": len(gz)}]}).encode()
mh, _ = blob(manifest)
index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + mh, "size": len(manifest),
    "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/busybox:berth",
                    "io.containerd.image.name": "docker.io/library/busybox:berth"}}]}).encode()
with tarfile.open(os.path.join(d, "image.tar"), "w") as t:
    def add(name, data):
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", index)
    for h, data in [(lh, gz), (ch, config), (mh, manifest)]:
        add("blobs/sha256/" + h, data)
PY
c="ctr -a $d/sock -n berth"
$c images import "$d/image.tar" >/dev/null
out=$($c run --rm --runc-binary "$rt" docker.io/library/busybox:berth t1 sh -c 'echo hello from berth-runtime; hostname')
echo "$out"
[ "$(echo "$out" | head -1)" = "hello from berth-runtime" ] || { echo "FAIL: ctr run output: $out" >&2; exit 1; }

$c run -d --runc-binary "$rt" docker.io/library/busybox:berth t2 sleep 300 >/dev/null
exec_out=$($c task exec --exec-id e1 t2 sh -c 'echo exec ok; cat /proc/1/cmdline | tr "\0" " "')
echo "$exec_out"
echo "$exec_out" | grep -q "exec ok" || { echo "FAIL: task exec" >&2; exit 1; }
echo "$exec_out" | grep -q "sleep 300" || { echo "FAIL: exec did not join the container" >&2; exit 1; }
$c task ps t2 | grep -q sleep || $c task ps t2
$c task kill -s KILL t2
for _ in $(seq 50); do $c task ls | grep -q "t2.*STOPPED" && break; sleep 0.1; done
$c task ls | grep -q "t2.*STOPPED" || { $c task ls; echo "FAIL: task did not stop" >&2; exit 1; }
$c task delete t2 >/dev/null
$c container delete t2
echo "PASS: containerd ran busybox with berth-runtime (run, exec, ps, kill, delete)"
