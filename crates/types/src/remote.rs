//! Remote build contexts as Docker names them (`docker build URL`, `POST /build?remote=`,
//! compose's `build.context`): a Git repository or an HTTP(S) URL, told apart by
//! dockerd's rules (`urlutil.IsGitURL`, `IsURL`).

/// An `http://` or `https://` URL.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// A Git repository: `git://`, `git@host:path`, `github.com/...`, or an HTTP(S) URL whose
/// path ends in `.git` (before an optional `#fragment`).
pub fn is_git_url(s: &str) -> bool {
    if s.starts_with("git://") || s.starts_with("github.com/") {
        return true;
    }
    // `git@host:path` (scp-like SSH); without the colon git reads a local path.
    if let Some(rest) = s.strip_prefix("git@") {
        return rest
            .split_once(':')
            .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'));
    }
    let before_fragment = s.split('#').next().unwrap_or(s);
    let has_fragment = s.contains('#') && !s.ends_with('#');
    is_url(s) && before_fragment.ends_with(".git") && (has_fragment || !s.contains('#'))
}

/// Either kind of remote context.
pub fn is_remote(s: &str) -> bool {
    is_url(s) || is_git_url(s)
}

/// A Git context split as Docker reads it: `URL#ref:subdir`, both parts optional;
/// `github.com/...` is fetched over HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRef {
    /// What `git fetch` is given.
    pub url: String,
    /// Branch, tag or commit (`None`: the remote's default branch).
    pub reference: Option<String>,
    /// The directory inside the repository that is the context (`None`: its root).
    pub subdir: Option<String>,
}

/// Splits a Git context (see [`GitRef`]).
pub fn git_ref(s: &str) -> GitRef {
    let (url, fragment) = s.split_once('#').unwrap_or((s, ""));
    let url = if url.starts_with("github.com/") {
        format!("https://{url}")
    } else {
        url.to_string()
    };
    let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
    let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
    GitRef {
        url,
        reference: some(reference),
        subdir: some(subdir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_are_told_from_other_urls_as_dockerd_does() {
        for git in [
            "git://github.com/docker/docker",
            "git@github.com:docker/docker.git",
            "git@bitbucket.org:atlassianlabs/atlassian-docker.git",
            "https://github.com/docker/docker.git",
            "http://github.com/docker/docker.git#branch",
            "http://github.com/docker/docker.git#:dir",
            "github.com/docker/docker",
        ] {
            assert!(is_git_url(git), "{git}");
        }
        for not in [
            "http://github.com/docker/docker.git#",
            "http://example.com/context.tar.gz",
            "https://example.com/Dockerfile",
            "./dir.git",
            "docker/docker",
            "git@github.com/meh/meh",
        ] {
            assert!(!is_git_url(not), "{not}");
        }
        assert!(is_remote("https://example.com/context.tar.gz"));
        assert!(!is_remote("./context"));
    }

    #[test]
    fn a_git_context_splits_into_url_ref_and_subdir() {
        assert_eq!(
            git_ref("https://h/r.git#v1.0:docker/app"),
            GitRef {
                url: "https://h/r.git".into(),
                reference: Some("v1.0".into()),
                subdir: Some("docker/app".into()),
            }
        );
        assert_eq!(
            git_ref("github.com/a/b#:sub"),
            GitRef {
                url: "https://github.com/a/b".into(),
                reference: None,
                subdir: Some("sub".into()),
            }
        );
        let plain = git_ref("git://h/r");
        assert_eq!((plain.reference, plain.subdir), (None, None));
    }
}
