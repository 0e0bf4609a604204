//! buildkit's own parser and lexer vectors (moby/buildkit `frontend/dockerfile`): the
//! parser cases with their expected dumps, the negative cases, `envVarTest` and
//! `wordsTest`. Set `BERTH_BUILDKIT_CORPUS` to a buildkit checkout (or its
//! `frontend/dockerfile` directory); without it the test says so and passes.

use std::path::{Path, PathBuf};

use berth_dockerfile::{Lex, parse};

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("BERTH_BUILDKIT_CORPUS")?);
    let nested = dir.join("frontend/dockerfile");
    Some(if nested.is_dir() { nested } else { dir })
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn parser_cases_dump_as_buildkit_expects() {
    let Some(root) = corpus() else {
        eprintln!("skipped: BERTH_BUILDKIT_CORPUS is not set");
        return;
    };
    let (mut ok, mut failed) = (0, Vec::new());
    for case in cases(&root.join("parser/testfiles")) {
        let text = std::fs::read_to_string(case.join("Dockerfile")).unwrap();
        let expected = std::fs::read_to_string(case.join("result")).unwrap();
        match parse(&text) {
            Ok(df) if df.dump() + "\n" == expected => ok += 1,
            Ok(df) => failed.push(format!(
                "{}:\n{}\n--- expected\n{expected}",
                case.display(),
                df.dump()
            )),
            Err(e) => failed.push(format!("{}: {e}", case.display())),
        }
    }
    let mut negative_ok = 0;
    for case in cases(&root.join("parser/testfiles-negative")) {
        let text = std::fs::read_to_string(case.join("Dockerfile")).unwrap();
        match parse(&text) {
            Err(_) => negative_ok += 1,
            Ok(_) => failed.push(format!("{}: parsed, should fail", case.display())),
        }
    }
    eprintln!("parser corpus: {ok} cases and {negative_ok} negative cases pass");
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}

#[test]
fn env_var_vectors_expand_as_buildkit_expects() {
    let Some(root) = corpus() else {
        eprintln!("skipped: BERTH_BUILDKIT_CORPUS is not set");
        return;
    };
    let text = std::fs::read_to_string(root.join("shell/envVarTest")).unwrap();
    let env: Vec<String> = ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let lex = Lex::new('\\');
    let (mut ok, mut failed) = (0, Vec::new());
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 3, "line {}", n + 1);
        let (platform, source, expected) = (parts[0].trim(), parts[1].trim(), parts[2].trim());
        if platform == "W" {
            continue;
        }
        let got = lex.process_word(source, &env);
        let pass = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(w), e) => w == e,
            _ => false,
        };
        if pass {
            ok += 1;
        } else {
            failed.push(format!(
                "line {}: {source:?} → {got:?}, expected {expected:?}",
                n + 1
            ));
        }
    }
    eprintln!("envVarTest: {ok} vectors pass");
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn word_vectors_split_as_buildkit_expects() {
    let Some(root) = corpus() else {
        eprintln!("skipped: BERTH_BUILDKIT_CORPUS is not set");
        return;
    };
    let text = std::fs::read_to_string(root.join("shell/wordsTest")).unwrap();
    let lex = Lex::new('\\');
    let mut env: Vec<String> = Vec::new();
    let (mut ok, mut failed) = (0, Vec::new());
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(e) = line.strip_prefix("ENV ") {
            env.push(e.trim_start_matches(' ').to_string());
            continue;
        }
        let (test, expected) = line.split_once('|').expect("one | per line");
        let expected: Vec<&str> = expected.trim_start_matches(' ').split(',').collect();
        let got = lex
            .process_words(test.trim(), &env)
            .unwrap_or_else(|_| vec!["error".to_string()]);
        if got == expected {
            ok += 1;
        } else {
            failed.push(format!(
                "line {}: {test:?} → {got:?}, expected {expected:?}",
                n + 1
            ));
        }
    }
    eprintln!("wordsTest: {ok} vectors pass");
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
