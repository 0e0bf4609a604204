//! Pull and push against a real registry: Debian's `docker-registry` (the distribution
//! project's registry:2), started per test on a free port with its storage in the test's
//! directory, driven through both CLIs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{CliKind, Daemon, berth, cli_ok, err, import_image, out};

/// A private registry process, killed (by its pid) and removed on drop.
struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Registry {
    /// Starts `docker-registry` on a free port of `host` with `extra` YAML under `http:`
    /// and at the top level (auth).
    fn start(host: &str, http_extra: &str, top_extra: &str) -> Registry {
        let bin = "/usr/bin/docker-registry";
        assert!(
            Path::new(bin).exists(),
            "docker-registry is missing: apt-get install docker-registry (scripts/deps.sh does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("registry-test")
            .tempdir()
            .unwrap();
        let port = std::net::TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}:{port}\n{http_extra}{top_extra}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.path().join("registry.log"))
                    .map(Stdio::from)
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let reg = Registry { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect((host, port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start: {}",
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        reg
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Where the registry keeps a blob's bytes.
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn curl(args: &[&str]) -> Output {
    let o = Command::new("curl")
        .args(["-sS", "--fail-with-body", "--max-time", "30"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "curl {args:?}: {} {}", out(&o), err(&o));
    o
}

const MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn manifest(reg: &Registry, repo: &str, reference: &str) -> serde_json::Value {
    let o = curl(&[
        "-H",
        &format!("Accept: {MANIFEST_V2}"),
        &reg.url(&format!("/v2/{repo}/manifests/{reference}")),
    ]);
    serde_json::from_slice(&o.stdout).unwrap()
}

fn sha256_of(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    format!("sha256:{}", &out(&o)[..64])
}

/// Uploads `file` as a blob (monolithic: POST then PUT with the digest).
fn upload_blob(reg: &Registry, repo: &str, file: &Path) -> String {
    let digest = sha256_of(file);
    let o = curl(&[
        "-X",
        "POST",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &reg.url(&format!("/v2/{repo}/blobs/uploads/")),
    ]);
    let head = out(&o);
    let location = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        })
        .unwrap()
        .trim()
        .to_string();
    let url = if location.starts_with("http") {
        location
    } else {
        reg.url(&location)
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{url}{sep}digest={digest}"),
    ]);
    digest
}

/// PUTs a manifest (list); returns its digest.
fn put_manifest(reg: &Registry, repo: &str, tag: &str, media_type: &str, body: &str) -> String {
    let file = reg.dir.path().join(format!("manifest-{tag}.json"));
    std::fs::write(&file, body).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        &format!("Content-Type: {media_type}"),
        "--data-binary",
        &format!("@{}", file.display()),
        &reg.url(&format!("/v2/{repo}/manifests/{tag}")),
    ]);
    sha256_of(&file)
}

fn digest_in(text: &str) -> String {
    let i = text.find("digest: sha256:").expect("a digest line") + "digest: ".len();
    text[i..i + 71].to_string()
}

/// An image with a file of its own, so a run shows which image it came from.
fn app_image(d: &Daemon, name: &str, motd: &str) -> Option<()> {
    let motd = motd.to_string();
    import_image(
        d,
        name,
        &["sh", "cat", "echo"],
        move |root| std::fs::write(root.join("etc/motd"), motd).unwrap(),
        &[r#"CMD ["cat", "/etc/motd"]"#],
    )
}

#[test]
fn push_rmi_pull_run_with_both_clis() {
    let reg = Registry::start("127.0.0.1", "", "");
    let d = Daemon::start();
    let Some(()) = app_image(&d, "app", "from the registry\n") else {
        return;
    };
    let name = format!("localhost:{}/team/app:v1", reg.port);
    cli_ok(&d, CliKind::Berth, &["tag", "app", &name]);
    let pushed = cli_ok(&d, CliKind::Berth, &["push", &name]);
    assert!(
        pushed.contains(&format!(
            "The push refers to repository [localhost:{}/team/app]",
            reg.port
        )) && pushed.contains(": Pushed"),
        "{pushed}"
    );
    let digest = digest_in(&pushed);
    // What the registry serves is what berth said it pushed.
    let m = manifest(&reg, "team/app", "v1");
    assert_eq!(m["mediaType"], MANIFEST_V2);
    let again = cli_ok(&d, CliKind::Docker, &["push", &name]);
    assert!(again.contains("Layer already exists"), "{again}");
    assert_eq!(digest_in(&again), digest);
    // Another repository of the same registry gets the layer by a mount, not an upload.
    let other = format!("localhost:{}/other:v1", reg.port);
    cli_ok(&d, CliKind::Berth, &["tag", "app", &other]);
    let mounted = cli_ok(&d, CliKind::Berth, &["push", &other]);
    assert!(mounted.contains("Mounted from team/app"), "{mounted}");

    cli_ok(&d, CliKind::Docker, &["rmi", &name, &other, "app"]);
    assert_eq!(cli_ok(&d, CliKind::Berth, &["images", "-q"]), "");
    let pulled = cli_ok(&d, CliKind::Docker, &["pull", &name]);
    assert!(
        pulled.contains("Pull complete")
            && pulled.contains(&format!("Digest: {digest}"))
            && pulled.contains(&format!("Status: Downloaded newer image for {name}")),
        "{pulled}"
    );
    assert_eq!(
        cli_ok(&d, CliKind::Docker, &["run", "--rm", &name]),
        "from the registry"
    );
    let repo_digest = format!("localhost:{}/team/app@{digest}", reg.port);
    assert_eq!(
        cli_ok(
            &d,
            CliKind::Berth,
            &["image", "inspect", "-f", "{{json .RepoDigests}}", &name]
        ),
        format!("[\"{repo_digest}\"]")
    );
    let again = cli_ok(&d, CliKind::Berth, &["pull", &name]);
    assert!(again.contains("Image is up to date"), "{again}");

    // By digest, after the tag is gone: no tag comes back, the digest names the image.
    cli_ok(&d, CliKind::Berth, &["rmi", &name]);
    let by_digest = cli_ok(&d, CliKind::Berth, &["pull", &repo_digest]);
    assert!(by_digest.contains("Downloaded newer image"), "{by_digest}");
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", &repo_digest]),
        "from the registry"
    );
    let listed = cli_ok(
        &d,
        CliKind::Docker,
        &[
            "images",
            "--digests",
            "--format",
            "{{.Repository}} {{.Tag}} {{.Digest}}",
        ],
    );
    assert_eq!(
        listed,
        format!("localhost:{}/team/app <none> {digest}", reg.port)
    );
    // rmi by digest: with no tag left, the image goes.
    let removed = cli_ok(&d, CliKind::Docker, &["rmi", &repo_digest]);
    assert!(
        removed.starts_with(&format!("Untagged: {repo_digest}\nDeleted: sha256:")),
        "{removed}"
    );
    assert_eq!(cli_ok(&d, CliKind::Berth, &["images", "-q"]), "");

    // Errors name what is missing and leave nothing behind.
    let missing = berth(
        &d,
        &["pull", &format!("localhost:{}/team/app:nope", reg.port)],
        None,
    );
    assert!(!missing.status.success());
    assert!(
        err(&missing).contains(&format!(
            "manifest for localhost:{}/team/app:nope not found",
            reg.port
        )),
        "{}",
        err(&missing)
    );
    let o = berth(
        &d,
        &["push", &format!("localhost:{}/nothing:here", reg.port)],
        None,
    );
    assert!(!o.status.success());
    assert!(
        err(&o).contains("An image does not exist locally with the tag"),
        "{}",
        err(&o)
    );
}

#[test]
fn a_corrupted_blob_fails_the_pull_and_stores_nothing() {
    let reg = Registry::start("127.0.0.1", "", "");
    let d = Daemon::start();
    let Some(()) = app_image(&d, "app", "genuine\n") else {
        return;
    };
    let name = format!("localhost:{}/app:v1", reg.port);
    cli_ok(&d, CliKind::Berth, &["tag", "app", &name]);
    cli_ok(&d, CliKind::Berth, &["push", &name]);
    cli_ok(&d, CliKind::Berth, &["rmi", &name, "app"]);
    // The registry now serves other (well-formed, gzipped) bytes under the layer's digest.
    let layer = manifest(&reg, "app", "v1")["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = reg.dir.path().join("forged");
    std::fs::write(&forged, "not the layer you asked for").unwrap();
    let gz = Command::new("gzip")
        .arg("-c")
        .arg(&forged)
        .output()
        .unwrap();
    std::fs::write(reg.blob_path(&layer), gz.stdout).unwrap();

    for cli in ["berth", "docker"] {
        let o = match cli {
            "berth" => berth(&d, &["pull", &name], None),
            _ => match common::docker(&d, &["pull", &name]) {
                Some(o) => o,
                None => continue,
            },
        };
        assert!(
            !o.status.success(),
            "{cli} pull of a forged layer succeeded"
        );
        let text = format!("{}{}", out(&o), err(&o));
        assert!(
            text.contains(&format!(
                "filesystem layer verification failed for digest {layer}"
            )),
            "{cli}: {text}"
        );
    }
    assert_eq!(cli_ok(&d, CliKind::Berth, &["images", "-q"]), "");
    let snapshots = d.dir.path().join("data/snapshots");
    let left: Vec<_> = std::fs::read_dir(&snapshots)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().starts_with("tmp-")),
        "unpacking left {left:?}"
    );
    let ingest: Vec<_> = std::fs::read_dir(d.dir.path().join("data/content/ingest"))
        .unwrap()
        .flatten()
        .collect();
    assert!(ingest.is_empty(), "half-written blobs left: {ingest:?}");
}

#[test]
fn a_manifest_list_gives_each_platform_its_image() {
    let reg = Registry::start("127.0.0.1", "", "");
    let d = Daemon::start();
    let Some(()) = app_image(&d, "app", "multi\n") else {
        return;
    };
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let base = format!("localhost:{}/multi", reg.port);
    cli_ok(
        &d,
        CliKind::Berth,
        &["tag", "app", &format!("{base}:native")],
    );
    cli_ok(&d, CliKind::Berth, &["push", &format!("{base}:native")]);
    // A second image for riscv64: the same layer under a config that says so.
    let native = manifest(&reg, "multi", "native");
    let config_digest = native["config"]["digest"].as_str().unwrap();
    let config_file = reg.dir.path().join("config.json");
    curl(&[
        "-o",
        config_file.to_str().unwrap(),
        &reg.url(&format!("/v2/multi/blobs/{config_digest}")),
    ]);
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_file).unwrap()).unwrap();
    config["architecture"] = "riscv64".into();
    std::fs::write(&config_file, serde_json::to_vec(&config).unwrap()).unwrap();
    let riscv_config = upload_blob(&reg, "multi", &config_file);
    let mut riscv = native.clone();
    riscv["config"]["digest"] = riscv_config.clone().into();
    riscv["config"]["size"] = std::fs::metadata(&config_file).unwrap().len().into();
    let native_body = serde_json::to_string(&native).unwrap();
    let riscv_body = serde_json::to_string(&riscv).unwrap();
    let native_digest = put_manifest(&reg, "multi", "native2", MANIFEST_V2, &native_body);
    let riscv_digest = put_manifest(&reg, "multi", "riscv", MANIFEST_V2, &riscv_body);
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": MANIFEST_V2, "size": riscv_body.len(), "digest": riscv_digest,
             "platform": {"architecture": "riscv64", "os": "linux"}},
            {"mediaType": MANIFEST_V2, "size": native_body.len(), "digest": native_digest,
             "platform": {"architecture": host_arch, "os": "linux"}},
        ]
    });
    let list_digest = put_manifest(
        &reg,
        "multi",
        "latest",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        &list.to_string(),
    );
    cli_ok(
        &d,
        CliKind::Berth,
        &["rmi", &format!("{base}:native"), "app"],
    );

    // What the registry offers, without pulling (`GET /distribution/{name}/json`).
    let (status, _, body) = d.request("GET", &format!("/v1.47/distribution/{base}:latest/json"));
    assert_eq!(status, 200, "{body}");
    let remote: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(remote["Descriptor"]["digest"], list_digest.as_str());
    let archs: Vec<&str> = remote["Platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["riscv64", host_arch]);
    let pulled = cli_ok(&d, CliKind::Berth, &["pull", &base]);
    assert!(
        pulled.contains(&format!("Digest: {list_digest}")),
        "{pulled}"
    );
    let inspect = |r: &str| {
        cli_ok(
            &d,
            CliKind::Berth,
            &["image", "inspect", "-f", "{{.Architecture}} {{.Id}}", r],
        )
    };
    assert_eq!(inspect(&base), format!("{host_arch} {config_digest}"));
    cli_ok(
        &d,
        CliKind::Docker,
        &["pull", "--platform", "linux/riscv64", &base],
    );
    assert_eq!(inspect(&base), format!("riscv64 {riscv_config}"));
    let o = berth(&d, &["pull", "--platform", "linux/s390x", &base], None);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("no matching manifest for linux/s390x in the manifest list entries"),
        "{}",
        err(&o)
    );
    let o = berth(&d, &["pull", "--platform", "linux", &base], None);
    assert!(err(&o).contains("invalid platform"), "{}", err(&o));

    // A build takes FROM for the platform asked for, pulling when the local image is not.
    let ctx = d.dir.path().join("platform-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM --platform=linux/{host_arch} {base}\nLABEL built=yes\n"),
    )
    .unwrap();
    cli_ok(
        &d,
        CliKind::Berth,
        &["build", "-t", "native-build", ctx.to_str().unwrap()],
    );
    assert!(
        inspect("native-build").starts_with(&format!("{host_arch} ")),
        "{}",
        inspect("native-build")
    );
    assert!(
        inspect(&base).starts_with(host_arch),
        "the base was pulled again for the host"
    );
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nLABEL built=yes\n"),
    )
    .unwrap();
    cli_ok(
        &d,
        CliKind::Berth,
        &[
            "build",
            "--platform",
            "linux/riscv64",
            "-t",
            "riscv-build",
            ctx.to_str().unwrap(),
        ],
    );
    assert!(
        inspect("riscv-build").starts_with("riscv64 "),
        "{}",
        inspect("riscv-build")
    );
}

fn snapshot_count(d: &Daemon) -> usize {
    std::fs::read_dir(d.dir.path().join("data/snapshots"))
        .map(|r| r.flatten().count())
        .unwrap_or(0)
}

#[test]
fn save_and_load_round_trip_with_both_clis() {
    let d = Daemon::start();
    let Some(()) = app_image(&d, "app", "saved\n") else {
        return;
    };
    cli_ok(&d, CliKind::Berth, &["tag", "app", "app:v2"]);
    cli_ok(&d, CliKind::Berth, &["run", "--rm", "app"]);
    let archive = d.dir.path().join("app.tar");
    cli_ok(
        &d,
        CliKind::Berth,
        &["save", "-o", archive.to_str().unwrap(), "app"],
    );
    let listing = Command::new("tar")
        .arg("tf")
        .arg(&archive)
        .output()
        .unwrap();
    for name in [
        "index.json",
        "manifest.json",
        "oci-layout",
        "repositories",
        "blobs/sha256/",
    ] {
        assert!(
            out(&listing).lines().any(|l| l == name),
            "{name} missing: {}",
            out(&listing)
        );
    }
    cli_ok(&d, CliKind::Docker, &["rmi", "app", "app:v2"]);
    // Nothing of the image is left: no blob, no snapshot.
    assert_eq!(snapshot_count(&d), 0);
    let loaded = cli_ok(
        &d,
        CliKind::Docker,
        &["load", "-i", archive.to_str().unwrap()],
    );
    assert_eq!(loaded, "Loaded image: app:latest\nLoaded image: app:v2");
    assert_eq!(
        cli_ok(&d, CliKind::Docker, &["run", "--rm", "app:v2"]),
        "saved"
    );
    let history = cli_ok(
        &d,
        CliKind::Berth,
        &[
            "history",
            "--format",
            "{{.ID}} {{.Size}} {{.Comment}}",
            "app",
        ],
    );
    let id = cli_ok(
        &d,
        CliKind::Berth,
        &["image", "inspect", "-f", "{{.Id}}", "app"],
    );
    assert!(
        history.starts_with(&id[7..19]) && history.ends_with("Imported from -"),
        "{history}"
    );

    // Through a pipe, by id: the image comes back without a tag.
    let saved = common::docker(&d, &["save", &id]).unwrap();
    assert!(saved.status.success(), "{}", err(&saved));
    cli_ok(&d, CliKind::Berth, &["rmi", "-f", "app", "app:v2"]);
    let o = berth(&d, &["load"], Some(&saved.stdout));
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), format!("Loaded image ID: {id}"));
}

#[test]
fn load_reads_the_legacy_layout_and_refuses_forged_blobs() {
    let d = Daemon::start();
    let Some(()) = app_image(&d, "app", "legacy\n") else {
        return;
    };
    // A docker-archive as Docker before 25 wrote it: <id>/layer.tar, <id>.json, manifest.json.
    let exported = d.dir.path().join("legacy");
    let oci = d.dir.path().join("oci");
    std::fs::create_dir_all(&exported).unwrap();
    std::fs::create_dir_all(&oci).unwrap();
    let archive = d.dir.path().join("app.tar");
    cli_ok(
        &d,
        CliKind::Berth,
        &["save", "-o", archive.to_str().unwrap(), "app"],
    );
    let untar = Command::new("tar")
        .arg("xf")
        .arg(&archive)
        .arg("-C")
        .arg(&oci)
        .status()
        .unwrap();
    assert!(untar.success());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.join("manifest.json")).unwrap()).unwrap();
    let layer = oci.join(manifest[0]["Layers"][0].as_str().unwrap());
    let config = oci.join(manifest[0]["Config"].as_str().unwrap());
    std::fs::create_dir_all(exported.join("abc")).unwrap();
    std::fs::copy(&layer, exported.join("abc/layer.tar")).unwrap();
    std::fs::copy(&config, exported.join("cfg.json")).unwrap();
    let legacy_manifest = serde_json::json!([{
        "Config": "cfg.json", "RepoTags": ["legacy:v1"], "Layers": ["abc/layer.tar"]
    }]);
    std::fs::write(exported.join("manifest.json"), legacy_manifest.to_string()).unwrap();
    let legacy = d.dir.path().join("legacy.tar");
    let packed = Command::new("tar")
        .arg("cf")
        .arg(&legacy)
        .arg("-C")
        .arg(&exported)
        .arg(".")
        .status()
        .unwrap();
    assert!(packed.success());
    let loaded = cli_ok(
        &d,
        CliKind::Berth,
        &["load", "-i", legacy.to_str().unwrap()],
    );
    assert_eq!(loaded, "Loaded image: legacy:v1");
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", "legacy:v1"]),
        "legacy"
    );

    // A blob whose bytes are not what its name says is refused, and nothing is loaded.
    std::fs::write(&config, b"{\"forged\": true}").unwrap();
    std::fs::remove_file(oci.join("manifest.json")).unwrap();
    let forged = d.dir.path().join("forged.tar");
    let packed = Command::new("tar")
        .arg("cf")
        .arg(&forged)
        .arg("-C")
        .arg(&oci)
        .arg(".")
        .status()
        .unwrap();
    assert!(packed.success());
    cli_ok(&d, CliKind::Berth, &["rmi", "app", "legacy:v1"]);
    let o = berth(&d, &["load", "-i", forged.to_str().unwrap()], None);
    assert!(!o.status.success());
    assert!(err(&o).contains("does not match its name"), "{}", err(&o));
    assert_eq!(cli_ok(&d, CliKind::Berth, &["images", "-q"]), "");
}

#[test]
fn blobs_and_snapshots_nothing_uses_are_collected_at_start() {
    let mut d = Daemon::start();
    let Some(()) = app_image(&d, "app", "kept\n") else {
        return;
    };
    cli_ok(&d, CliKind::Berth, &["run", "--rm", "app"]);
    let blobs = d.dir.path().join("data/content/blobs/sha256");
    let before = std::fs::read_dir(&blobs).unwrap().count();
    assert_eq!(snapshot_count(&d), 1);
    // What a crash in the middle of a pull leaves: a stored blob and a snapshot that no
    // image record names yet.
    let stray = "1111111111111111111111111111111111111111111111111111111111111111";
    d.crash_then(|d| {
        std::fs::write(
            d.dir.path().join("data/content/blobs/sha256").join(stray),
            "x",
        )
        .unwrap();
        std::fs::create_dir_all(d.dir.path().join("data/snapshots").join(stray).join("fs"))
            .unwrap();
    });
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), before);
    assert_eq!(snapshot_count(&d), 1);
    assert_eq!(cli_ok(&d, CliKind::Berth, &["run", "--rm", "app"]), "kept");
}

/// This host's first global IPv4 address: a registry there is not on the loopback network,
/// so neither berthd nor docker treats it as insecure and TLS is really checked.
fn host_address() -> Option<String> {
    let o = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    out(&o)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|cidr| cidr.split('/').next())
        .find(|ip| !ip.starts_with("127."))
        .map(str::to_string)
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl {args:?}: {}", err(&o));
}

/// A CA and a server certificate for `ip` signed by it, in `dir`.
fn make_certs(dir: &Path, ip: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=berth test CA",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    let cn = format!("/CN={ip}");
    csr.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", &cn]);
    openssl(dir, &csr);
    std::fs::write(dir.join("ext.cnf"), format!("subjectAltName=IP:{ip}\n")).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// This host's address and a CA with a server certificate for it (see [`make_certs`]);
/// `None`, and the test skips, on a host without a global address.
fn host_pki() -> Option<(String, tempfile::TempDir)> {
    let Some(ip) = host_address() else {
        eprintln!("skipped: this host has no global IPv4 address");
        return None;
    };
    let pki = tempfile::tempdir().unwrap();
    make_certs(pki.path(), &ip);
    Some((ip, pki))
}

/// The `tls:` lines of a registry serving the certificate of [`host_pki`].
fn tls_config(pki: &Path) -> String {
    let p = |f: &str| pki.join(f).display().to_string();
    format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        p("server.crt"),
        p("server.key")
    )
}

/// Removes `name` and `app`, pulls `name` back with the docker CLI and runs it.
fn pull_back_and_run(d: &Daemon, name: &str, expected: &str) {
    cli_ok(d, CliKind::Berth, &["rmi", name, "app"]);
    cli_ok(d, CliKind::Docker, &["pull", name]);
    assert_eq!(cli_ok(d, CliKind::Berth, &["run", "--rm", name]), expected);
}

#[test]
fn basic_auth_over_tls_with_a_ca_in_certs_d() {
    let Some((ip, pki)) = host_pki() else {
        return;
    };
    let htpasswd = Command::new("htpasswd")
        .args(["-Bbn", "tester", "s3cret"])
        .output()
        .unwrap();
    assert!(htpasswd.status.success(), "{}", err(&htpasswd));
    std::fs::write(pki.path().join("htpasswd"), &htpasswd.stdout).unwrap();
    let p = |f: &str| pki.path().join(f).display().to_string();
    let reg = Registry::start(
        &ip,
        &tls_config(pki.path()),
        &format!(
            "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            p("htpasswd")
        ),
    );
    let certs = pki.path().join("certs.d");
    std::fs::create_dir_all(&certs).unwrap();
    let d = Daemon::start_with(&["--certs-dir", certs.to_str().unwrap()]);
    let Some(()) = app_image(&d, "app", "over tls\n") else {
        return;
    };
    let server = format!("{ip}:{}", reg.port);
    let name = format!("{server}/app:v1");
    cli_ok(&d, CliKind::Berth, &["tag", "app", &name]);

    // Unknown CA: refused, and the message says why.
    let o = berth(&d, &["push", &name], None);
    assert!(!o.status.success());
    assert!(err(&o).contains("certificate"), "{}", err(&o));

    std::fs::create_dir_all(certs.join(&server)).unwrap();
    std::fs::copy(
        pki.path().join("ca.crt"),
        certs.join(&server).join("ca.crt"),
    )
    .unwrap();
    // Known CA, no credentials.
    let o = berth(&d, &["push", &name], None);
    assert!(!o.status.success());
    assert!(err(&o).contains("authentication required"), "{}", err(&o));
    // Wrong password: refused at login, nothing stored.
    let o = berth(
        &d,
        &["login", "-u", "tester", "--password-stdin", &server],
        Some(b"wrong\n"),
    );
    assert!(!o.status.success());
    assert!(
        err(&o).contains("incorrect username or password"),
        "{}",
        err(&o)
    );
    let config = d.dir.path().join("docker-config/config.json");
    assert!(!config.exists());
    // The docker CLI logs in; berth uses the same stored login.
    let logged = cli_ok(
        &d,
        CliKind::Docker,
        &["login", "-u", "tester", "-p", "s3cret", &server],
    );
    assert!(logged.contains("Login Succeeded"), "{logged}");
    let pushed = cli_ok(&d, CliKind::Berth, &["push", &name]);
    assert!(pushed.contains("Pushed"), "{pushed}");
    pull_back_and_run(&d, &name, "over tls");
    // Logged out: pulls are refused again.
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["logout", &server]),
        format!("Removing login credentials for {server}")
    );
    cli_ok(&d, CliKind::Berth, &["rmi", &name]);
    let o = berth(&d, &["pull", &name], None);
    assert!(!o.status.success());
    // berth's own login works as well.
    let o = berth(
        &d,
        &["login", "-u", "tester", "--password-stdin", &server],
        Some(b"s3cret\n"),
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "Login Succeeded");
    let stored = std::fs::read_to_string(&config).unwrap();
    assert!(stored.contains(&server), "{stored}");
    cli_ok(&d, CliKind::Docker, &["pull", &name]);
}

/// A token service for the registry's `token` auth: checks Basic credentials and signs a
/// JWT (RS256, its certificate in `x5c`) granting the scopes asked for. Serves one request
/// at a time on its own thread; stopped on drop.
struct TokenServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    scopes: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    fn start(pki: &Path) -> TokenServer {
        openssl(
            pki,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "token.key",
                "-out",
                "token.crt",
                "-days",
                "1",
                "-subj",
                "/CN=berth test token signer",
            ],
        );
        openssl(
            pki,
            &[
                "x509",
                "-in",
                "token.crt",
                "-outform",
                "DER",
                "-out",
                "token.der",
            ],
        );
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let scopes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop2, scopes2, pki) = (stop.clone(), scopes.clone(), pki.to_path_buf());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    serve_token(conn, &pki, &scopes2);
                }
            }
        });
        TokenServer {
            port,
            stop,
            scopes,
            thread: Some(thread),
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn b64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn serve_token(mut conn: std::net::TcpStream, pki: &Path, seen: &std::sync::Mutex<Vec<String>>) {
    use base64::Engine as _;
    use std::io::{BufRead, BufReader, Write};
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            let expected = base64::engine::general_purpose::STANDARD.encode("tester:s3cret");
            authorized = v.trim() == format!("Basic {expected}");
        }
    }
    if !authorized {
        let _ = conn.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut access = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "scope" {
            seen.lock().unwrap().push(v.to_string());
            let parts: Vec<&str> = v.split(':').collect();
            if parts.len() == 3 {
                access.push(serde_json::json!({
                    "type": parts[0], "name": parts[1],
                    "actions": parts[2].split(',').collect::<Vec<_>>(),
                }));
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let der = std::fs::read(pki.join("token.der")).unwrap();
    let header = serde_json::json!({
        "alg": "RS256", "typ": "JWT",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(der)],
    });
    let claims = serde_json::json!({
        "iss": "berth-test-issuer", "sub": "tester", "aud": "berth-test",
        "exp": now + 300, "nbf": now - 10, "iat": now - 10, "jti": format!("{now}-{}", access.len()),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    std::fs::write(pki.join("jwt.in"), &input).unwrap();
    openssl(
        pki,
        &[
            "dgst",
            "-sha256",
            "-sign",
            "token.key",
            "-out",
            "jwt.sig",
            "jwt.in",
        ],
    );
    let token = format!(
        "{input}.{}",
        b64url(&std::fs::read(pki.join("jwt.sig")).unwrap())
    );
    let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn bearer_tokens_from_the_registry_token_service() {
    let pki = tempfile::tempdir().unwrap();
    let tokens = TokenServer::start(pki.path());
    let reg = Registry::start(
        "127.0.0.1",
        "",
        &format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: berth-test\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
            tokens.port,
            pki.path().join("token.crt").display()
        ),
    );
    let d = Daemon::start();
    let Some(()) = app_image(&d, "app", "with a token\n") else {
        return;
    };
    let server = format!("127.0.0.1:{}", reg.port);
    let name = format!("{server}/team/app:v1");
    cli_ok(&d, CliKind::Berth, &["tag", "app", &name]);
    let o = berth(&d, &["push", &name], None);
    assert!(!o.status.success());
    assert!(err(&o).contains("authentication required"), "{}", err(&o));
    let o = berth(
        &d,
        &["login", "-u", "tester", "--password-stdin", &server],
        Some(b"nope\n"),
    );
    assert!(
        err(&o).contains("incorrect username or password"),
        "{}",
        err(&o)
    );
    let o = berth(
        &d,
        &["login", "-u", "tester", "--password-stdin", &server],
        Some(b"s3cret\n"),
    );
    assert!(o.status.success(), "{}", err(&o));
    let pushed = cli_ok(&d, CliKind::Berth, &["push", &name]);
    assert!(pushed.contains("Pushed"), "{pushed}\n{}", reg.log());
    assert!(
        tokens
            .scopes
            .lock()
            .unwrap()
            .iter()
            .any(|s| s == "repository:team/app:pull,push"),
        "{:?}",
        tokens.scopes.lock().unwrap()
    );
    pull_back_and_run(&d, &name, "with a token");
}

#[test]
fn an_oci_index_with_plain_and_zstd_layers() {
    let reg = Registry::start("127.0.0.1", "", "");
    let d = Daemon::start();
    let Some(()) = app_image(&d, "app", "from the first layer\n") else {
        return;
    };
    // The first layer, uncompressed, and the config, from a save of the image.
    let work = reg.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let saved = work.join("app.tar");
    cli_ok(
        &d,
        CliKind::Berth,
        &["save", "-o", saved.to_str().unwrap(), "app"],
    );
    assert!(
        Command::new("tar")
            .arg("xf")
            .arg(&saved)
            .arg("-C")
            .arg(&work)
            .status()
            .unwrap()
            .success()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.join("manifest.json")).unwrap()).unwrap();
    let plain = work.join(manifest[0]["Layers"][0].as_str().unwrap());
    let mut config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(work.join(manifest[0]["Config"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    // A second layer that replaces /etc/motd, compressed with zstd.
    let second = work.join("second");
    std::fs::create_dir_all(second.join("etc")).unwrap();
    std::fs::write(second.join("etc/motd"), "from a zstd layer\n").unwrap();
    let second_tar = work.join("second.tar");
    assert!(
        Command::new("tar")
            .arg("cf")
            .arg(&second_tar)
            .arg("-C")
            .arg(&second)
            .arg("etc")
            .status()
            .unwrap()
            .success()
    );
    let zst = work.join("second.tar.zst");
    let z = Command::new("zstd")
        .arg("-q")
        .arg(&second_tar)
        .arg("-o")
        .arg(&zst)
        .status()
        .unwrap();
    assert!(z.success(), "zstd is missing (scripts/deps.sh installs it)");
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(sha256_of(&second_tar).into());
    let config_file = work.join("config.json");
    std::fs::write(&config_file, serde_json::to_vec(&config).unwrap()).unwrap();

    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    let oci = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": upload_blob(&reg, "oci", &config_file), "size": size(&config_file)},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar",
             "digest": upload_blob(&reg, "oci", &plain), "size": size(&plain)},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
             "digest": upload_blob(&reg, "oci", &zst), "size": size(&zst)},
        ],
    })
    .to_string();
    let oci_digest = put_manifest(
        &reg,
        "oci",
        "single",
        "application/vnd.oci.image.manifest.v1+json",
        &oci,
    );
    let host_arch = config["architecture"].as_str().unwrap().to_string();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": oci_digest, "size": oci.len(),
                       "platform": {"os": "linux", "architecture": host_arch}}],
    });
    put_manifest(
        &reg,
        "oci",
        "v1",
        "application/vnd.oci.image.index.v1+json",
        &index.to_string(),
    );
    cli_ok(&d, CliKind::Berth, &["rmi", "app"]);

    let name = format!("localhost:{}/oci:v1", reg.port);
    let pulled = cli_ok(&d, CliKind::Berth, &["pull", &name]);
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    assert_eq!(
        cli_ok(&d, CliKind::Berth, &["run", "--rm", &name]),
        "from a zstd layer"
    );
}

#[test]
fn a_registry_that_wants_client_certificates_gets_the_one_in_certs_d() {
    let Some((ip, pki)) = host_pki() else {
        return;
    };
    // A client certificate signed by the same CA.
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
        "-subj",
        "/CN=berth client",
    ]);
    openssl(pki.path(), &csr);
    // An extension makes it X.509 v3, the only version rustls accepts.
    std::fs::write(
        pki.path().join("client.cnf"),
        "extendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(
        pki.path(),
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.cert",
            "-days",
            "1",
            "-extfile",
            "client.cnf",
        ],
    );
    let clientcas = format!(
        "    clientcas:\n      - {}\n",
        pki.path().join("ca.crt").display()
    );
    let reg = Registry::start(&ip, &(tls_config(pki.path()) + &clientcas), "");
    let certs = pki.path().join("certs.d");
    let server = format!("{ip}:{}", reg.port);
    std::fs::create_dir_all(certs.join(&server)).unwrap();
    std::fs::copy(
        pki.path().join("ca.crt"),
        certs.join(&server).join("ca.crt"),
    )
    .unwrap();
    let d = Daemon::start_with(&["--certs-dir", certs.to_str().unwrap()]);
    let Some(()) = app_image(&d, "app", "mutual tls\n") else {
        return;
    };
    let name = format!("{server}/app:v1");
    cli_ok(&d, CliKind::Berth, &["tag", "app", &name]);
    let o = berth(&d, &["push", &name], None);
    assert!(!o.status.success(), "pushed without a client certificate");
    for f in ["client.cert", "client.key"] {
        std::fs::copy(pki.path().join(f), certs.join(&server).join(f)).unwrap();
    }
    let pushed = cli_ok(&d, CliKind::Berth, &["push", &name]);
    assert!(pushed.contains("Pushed"), "{pushed}");
    pull_back_and_run(&d, &name, "mutual tls");
}

#[test]
fn an_insecure_registry_is_reached_without_its_ca_and_pull_all_tags() {
    let Some((ip, pki)) = host_pki() else {
        return;
    };
    let reg = Registry::start(&ip, &tls_config(pki.path()), "");
    let server = format!("{ip}:{}", reg.port);
    // No CA anywhere: only --insecure-registry lets berthd through.
    let d = Daemon::start_with(&["--insecure-registry", &server]);
    let Some(()) = app_image(&d, "app", "insecure\n") else {
        return;
    };
    for tag in ["v1", "v2"] {
        let name = format!("{server}/app:{tag}");
        cli_ok(&d, CliKind::Berth, &["tag", "app", &name]);
        cli_ok(&d, CliKind::Berth, &["push", &name]);
    }
    cli_ok(
        &d,
        CliKind::Berth,
        &[
            "rmi",
            &format!("{server}/app:v1"),
            &format!("{server}/app:v2"),
            "app",
        ],
    );
    let all = cli_ok(
        &d,
        CliKind::Berth,
        &["pull", "-a", &format!("{server}/app")],
    );
    assert!(
        all.contains("v1: Pulling from app") && all.contains("v2: Pulling from app"),
        "{all}"
    );
    let tags = cli_ok(&d, CliKind::Berth, &["images", "--format", "{{.Tag}}"]);
    assert_eq!(tags, "v1\nv2");
}
