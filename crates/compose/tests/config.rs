//! `config` output for a project of several files (interpolation from the shell and
//! `.env`, YAML merge keys, a second `-f` file, `extends` from another file, profiles)
//! matches what is expected, and bad files get one line naming the file and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_compose::{Options, load};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn options(dir: &Path, files: &[&str], env: &[(&str, &str)]) -> Options {
    Options {
        files: files.iter().map(|f| dir.join(f)).collect(),
        working_dir: dir.to_path_buf(),
        environment: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..Options::default()
    }
}

#[test]
fn several_files_interpolate_merge_and_extend_as_expected() {
    let dir = fixture("app");
    let opts = options(
        &dir,
        &["compose.yaml", "override.yaml"],
        &[("WEB_PORT", "8081"), ("DEBUG", "1")],
    );
    let project = load(&opts).unwrap();
    let expected = std::fs::read_to_string(dir.join("expected.yaml"))
        .unwrap()
        .replace("$DIR", &dir.display().to_string());
    assert_eq!(project.to_yaml(), expected);
    assert_eq!(
        project.start_order().unwrap(),
        [vec!["db".to_string()], vec!["web".to_string()]]
    );
    assert!(project.disabled.contains_key("debug"));

    // A profile enables its services.
    let mut opts = opts;
    opts.profiles = vec!["tools".into()];
    assert!(load(&opts).unwrap().services.contains_key("debug"));
}

fn error_of(files: &[(&str, &str)], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let opts = options(dir.path(), &[files[0].0], env);
    let message = load(&opts).unwrap_err().to_string();
    message.replace(&dir.path().display().to_string(), "$DIR")
}

#[test]
fn bad_files_get_one_line_naming_file_and_key() {
    assert_eq!(
        error_of(
            &[("compose.yaml", "services:\n  web:\n    imagee: busybox\n")],
            &[]
        ),
        "validating $DIR/compose.yaml: services.web additional properties 'imagee' not allowed"
    );
    let syntax = error_of(
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: busybox\n   ports: x\n",
        )],
        &[],
    );
    assert!(
        syntax.starts_with("$DIR/compose.yaml: yaml: ") && syntax.contains("line 4"),
        "{syntax}"
    );
    assert_eq!(
        error_of(
            &[(
                "compose.yaml",
                "services:\n  web:\n    image: app:${TAG:?set TAG first}\n"
            )],
            &[]
        ),
        "required variable TAG is missing a value: set TAG first"
    );
    assert_eq!(
        error_of(
            &[("compose.yaml", "services:\n  web:\n    image: app:${}\n")],
            &[]
        ),
        "invalid interpolation format for services.web.image: \"app:${}\"; you may need to escape any $ with another $"
    );
    assert_eq!(
        error_of(
            &[(
                "compose.yaml",
                "services:\n  web:\n    image: a\n    networks: [front]\n"
            )],
            &[]
        ),
        "service \"web\" refers to undefined network front: invalid compose project"
    );
    assert_eq!(
        error_of(
            &[(
                "compose.yaml",
                "services:\n  web:\n    image: a\n    depends_on: [db]\n"
            )],
            &[]
        ),
        "service \"web\" depends on undefined service \"db\": invalid compose project"
    );
    assert_eq!(
        error_of(
            &[("compose.yaml", "services:\n  web:\n    extends: web\n")],
            &[]
        ),
        "services.web.extends: circular reference to web"
    );
}

/// Writes `files` (path, text) under a new directory.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn included_files_bring_their_resources_with_their_own_paths_and_variables() {
    let dir = tree(&[
        (
            "compose.yaml",
            "include:\n  - db/compose.yaml\n  - path: cache.yaml\n    env_file: cache.env\nservices:\n  web:\n    image: web:${TAG}\n    depends_on: [db]\n",
        ),
        (".env", "TAG=1\n"),
        (
            "db/compose.yaml",
            "services:\n  db:\n    build: .\n    image: db:${DB_TAG}\n    secrets: [pw]\nsecrets:\n  pw:\n    file: ./pw.txt\nvolumes:\n  data: {}\n",
        ),
        ("db/.env", "DB_TAG=15\n"),
        (
            "cache.yaml",
            "services:\n  cache:\n    image: cache:${CACHE_TAG}\n",
        ),
        ("cache.env", "CACHE_TAG=7\n"),
    ]);
    let d = dir.path();
    let p = load(&options(d, &["compose.yaml"], &[])).unwrap();
    assert_eq!(p.services["web"]["image"], "web:1");
    assert_eq!(p.services["db"]["image"], "db:15");
    assert_eq!(
        p.services["db"]["build"]["context"],
        d.join("db").display().to_string()
    );
    assert_eq!(
        p.secrets["pw"]["file"],
        d.join("db/pw.txt").display().to_string()
    );
    assert!(p.volumes.contains_key("data"));
    assert_eq!(p.services["cache"]["image"], "cache:7");

    // A resource on both sides, and a file that includes itself, are refused.
    let dir = tree(&[
        (
            "compose.yaml",
            "include: [other.yaml]\nservices:\n  web:\n    image: a\n",
        ),
        ("other.yaml", "services:\n  web:\n    image: b\n"),
    ]);
    let e = load(&options(dir.path(), &["compose.yaml"], &[]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("services.web from") && e.contains("conflicts"),
        "{e}"
    );
    let dir = tree(&[
        ("compose.yaml", "include: [a.yaml]\nservices: {}\n"),
        ("a.yaml", "include: [compose.yaml]\nservices: {}\n"),
    ]);
    let e = load(&options(dir.path(), &["compose.yaml"], &[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("include cycle"), "{e}");
}
