//! The image backend of the API: `berth-images` behind `berth_api::ImageBackend`, and the
//! one place where image errors become HTTP statuses.

use std::io::Read;

use crate::build_context;
use berth_api::{ApiError, ImageBackend, ImportRequest, ProgressSender, PullRequest};
use berth_distribution::{Credentials, Distribution, Progress, PushRequest};
use berth_events::{Event, Events, kind};
use berth_images::{Error, Filters, ImageStore, ImportOptions};
use futures_util::future::BoxFuture;

/// Maps image-store errors to Docker's statuses.
pub fn api_error(e: Error) -> ApiError {
    match e {
        Error::InvalidReference(m) | Error::InvalidInput(m) => ApiError::bad_request(m),
        Error::NotFound(_) => ApiError::not_found(e.to_string()),
        Error::Conflict(m) => ApiError::conflict(m),
        Error::Io(m) => ApiError::bad_request(m),
        Error::Content(_) | Error::Metadata(_) => ApiError::internal(e.to_string()),
    }
}

/// Filter keys `GET /images/json` accepts.
const LIST_FILTERS: &[&str] = &["dangling", "reference", "label", "before", "since"];

/// The image store as the API sees it, with the containers that keep images in use.
pub struct ImageService {
    store: ImageStore,
    containers: berth_containers::ContainerService,
    dist: Distribution,
    builder: berth_build::Builder,
    /// Where build contexts are extracted (`data-root/tmp`).
    scratch: std::path::PathBuf,
}

/// Maps pull, push and login errors to Docker's statuses.
fn dist_error(e: berth_distribution::Error) -> ApiError {
    use berth_distribution::Error as E;
    match e {
        E::BadRequest(m) => ApiError::bad_request(m),
        E::NotFound(m) => ApiError::not_found(m),
        E::Unauthorized(m) => ApiError {
            status: axum::http::StatusCode::UNAUTHORIZED,
            message: m,
        },
        E::Registry(m) | E::Verification(m) | E::Store(m) => ApiError::internal(m),
    }
}

/// FROM's pull during a build: the pull's progress becomes build output lines.
fn pull_for_build(
    dist: Distribution,
) -> impl Fn(&str, Option<&str>, &mut dyn FnMut(serde_json::Value)) -> Result<(), String> + Send + Sync
{
    let handle = tokio::runtime::Handle::current();
    move |name, platform, out| {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let req = berth_distribution::PullRequest {
            reference: name.to_string(),
            platform: platform.map(str::to_string),
        };
        let result = handle.block_on(dist.pull(&req, None, &Progress::new(tx)));
        while let Ok(m) = rx.try_recv() {
            if let Some(status) = m["status"].as_str() {
                let line = match m["id"].as_str() {
                    Some(id) => format!("{id}: {status}\n"),
                    None => format!("{status}\n"),
                };
                out(serde_json::json!({"stream": line}));
            }
        }
        result.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// ADD's downloads during a build.
fn fetch_for_build(
    dist: Distribution,
) -> impl Fn(&str, &std::path::Path) -> Result<(), String> + Send + Sync {
    let handle = tokio::runtime::Handle::current();
    move |url, dest| {
        handle
            .block_on(dist.download(url, dest))
            .map_err(|e| e.to_string())
    }
}

/// A flag set when the client of a streamed operation goes away (its response body is
/// dropped); the watching task ends with the guard.
struct CancelOnGone {
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _done: tokio::sync::oneshot::Sender<()>,
}

fn cancel_when_gone(progress: &ProgressSender) -> CancelOnGone {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let (tx, set) = (progress.clone(), flag.clone());
    tokio::runtime::Handle::current().spawn(async move {
        tokio::select! {
            _ = tx.closed() => set.store(true, std::sync::atomic::Ordering::Relaxed),
            // The operation ended: let go of the sender so the response can end.
            _ = finished => {}
        }
    });
    CancelOnGone { flag, _done: done }
}

fn credentials(header: Option<&str>) -> Result<Option<Credentials>, ApiError> {
    header
        .map(Credentials::from_header)
        .transpose()
        .map(Option::flatten)
        .map_err(dist_error)
}

impl ImageService {
    /// The services the endpoints need.
    pub fn new(
        store: ImageStore,
        containers: berth_containers::ContainerService,
        dist: Distribution,
        db: std::sync::Arc<berth_metadata::Db>,
        scratch: std::path::PathBuf,
    ) -> Self {
        let builder = berth_build::Builder::new(
            containers.clone(),
            store.clone(),
            db,
            std::sync::Arc::new(pull_for_build(dist.clone())),
            std::sync::Arc::new(fetch_for_build(dist.clone())),
        );
        ImageService {
            store,
            containers,
            dist,
            builder,
            scratch,
        }
    }

    /// Removes snapshots left unused by a removal (blobs went with the image's record).
    /// A failure here costs disk, not correctness: it is logged, not returned.
    fn sweep_snapshots(&self) {
        let swept = self
            .store
            .all_layers()
            .map_err(|e| e.to_string())
            .and_then(|layers| {
                self.containers
                    .remove_unused_snapshots(&layers)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = swept {
            tracing::warn!("removing unused snapshots: {e}");
        }
    }

    /// Start-up housekeeping: blobs and snapshots that nothing references (what a crash
    /// in the middle of a pull, a load or a removal leaves) are deleted.
    pub fn collect_garbage(&self) {
        // Contexts of builds a crash interrupted.
        let _ = std::fs::remove_dir_all(&self.scratch);
        match self.store.collect_garbage() {
            Ok((0, _)) => {}
            Ok((n, bytes)) => tracing::info!("removed {n} unreferenced blobs ({bytes} bytes)"),
            Err(e) => tracing::warn!("garbage collection of blobs: {e}"),
        }
        self.sweep_snapshots();
    }

    /// Docker's refusals for removing an image containers use: without force only an
    /// untag of one of several tags; with force anything but an image a running
    /// container uses.
    fn check_in_use(&self, name: &str, force: bool) -> Result<(), ApiError> {
        let image = self.store.inspect(name).map_err(api_error)?;
        let id = image["Id"].as_str().unwrap_or("").to_string();
        let short_img = id
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect::<String>();
        let users = self
            .containers
            .all()
            .map_err(crate::containers::api_error)?
            .into_iter()
            .filter(|c| c.image_id == id)
            .collect::<Vec<_>>();
        let Some(first) = users.first() else {
            return Ok(());
        };
        let tags = image["RepoTags"].as_array().map_or(0, Vec::len);
        let by_id = id
            .trim_start_matches("sha256:")
            .starts_with(name.trim_start_matches("sha256:"));
        let untag_only = !by_id && tags > 1;
        if untag_only {
            return Ok(());
        }
        let short = &first.id[..12];
        if let Some(running) = users
            .iter()
            .find(|c| matches!(c.state.status.as_str(), "running" | "paused"))
        {
            if force {
                return Err(ApiError::conflict(format!(
                    "conflict: unable to delete {short_img} (cannot be forced) - image is being used by running container {}",
                    &running.id[..12]
                )));
            }
        } else if force {
            return Ok(());
        }
        Err(ApiError::conflict(if by_id {
            format!(
                "conflict: unable to delete {short_img} (must be forced) - image is being used by stopped container {short}"
            )
        } else {
            format!(
                "conflict: unable to remove repository reference \"{name}\" (must force) - container {short} is using its referenced image {short_img}"
            )
        }))
    }
}

/// An image event: dockerd names the actor by id, or by reference for pull and push.
fn image_event(events: &Events, action: &str, id: &str, name: &str) {
    events.emit(Event::new(kind::IMAGE, action, id).attr("name", name));
}

/// dockerd's familiar repository name of a reference: `busybox:latest` → `busybox`,
/// `localhost:5000/app@sha256:…` → `localhost:5000/app`.
fn repository_of(reference: &str) -> String {
    berth_images::reference::Reference::parse(reference)
        .map(|r| berth_images::reference::familiar(&r.repository()))
        .unwrap_or_else(|_| reference.to_string())
}

impl ImageService {
    fn events(&self) -> &Events {
        self.containers.events()
    }

    fn image_id(&self, name: &str) -> Option<String> {
        let image = self.store.inspect(name).ok()?;
        image["Id"].as_str().map(str::to_string)
    }

    /// untag and delete events for what a removal report lists.
    fn emit_removal(&self, id: &str, report: &serde_json::Value) {
        for entry in report.as_array().into_iter().flatten() {
            if entry.get("Untagged").is_some() {
                image_event(self.events(), "untag", id, id);
            }
            if let Some(d) = entry["Deleted"].as_str() {
                image_event(self.events(), "delete", d, d);
            }
        }
    }
}

impl ImageBackend for ImageService {
    fn import(
        &self,
        archive: &mut (dyn Read + Send),
        req: ImportRequest,
    ) -> Result<String, ApiError> {
        let reference = match (req.repo, req.tag) {
            (Some(repo), Some(tag)) => Some(format!("{repo}:{tag}")),
            (repo, _) => repo,
        };
        let opts = ImportOptions {
            reference,
            changes: req.changes,
            message: req.message,
            source: "-".into(),
        };
        let id = self.store.import(archive, &opts).map_err(api_error)?;
        image_event(self.events(), "import", &id, &id);
        if let Some(r) = &opts.reference {
            image_event(self.events(), "tag", &id, r);
        }
        Ok(id)
    }

    fn list(&self, all: bool, filters: &str) -> Result<serde_json::Value, ApiError> {
        let filters = Filters::parse(filters, LIST_FILTERS).map_err(api_error)?;
        self.store
            .list(&filters, all)
            .map(serde_json::Value::from)
            .map_err(api_error)
    }

    fn inspect(&self, name: &str) -> Result<serde_json::Value, ApiError> {
        self.store.inspect(name).map_err(api_error)
    }

    fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<(), ApiError> {
        let target = match tag {
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_string(),
        };
        self.store.tag(name, &target).map_err(api_error)?;
        if let Some(id) = self.image_id(&target) {
            image_event(self.events(), "tag", &id, &target);
        }
        Ok(())
    }

    fn prune(&self, filters: &str) -> Result<serde_json::Value, ApiError> {
        let f: serde_json::Value = if filters.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(filters)
                .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?
        };
        let values = |k: &str| -> Vec<String> {
            match &f[k] {
                serde_json::Value::Object(m) => m.keys().cloned().collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            }
        };
        // Dangling ones only unless dangling=false (`image prune -a`).
        let dangling_only = !values("dangling").iter().any(|v| v == "false" || v == "0");
        let now = berth_types::time::unix_seconds(std::time::SystemTime::now()) as f64;
        let until = match values("until").first() {
            Some(u) => Some(
                berth_types::time::parse_point_in_time(u, now)
                    .ok_or_else(|| ApiError::bad_request(format!("invalid until filter: {u}")))?,
            ),
            None => None,
        };
        let labels = values("label");
        let used: std::collections::HashSet<String> = self
            .containers
            .all()
            .map_err(crate::containers::api_error)?
            .into_iter()
            .map(|c| c.image_id)
            .collect();
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        let all = self
            .store
            .list(&Filters::default(), true)
            .map_err(api_error)?;
        let parents: std::collections::HashSet<String> = all
            .iter()
            .filter_map(|i| {
                i["ParentId"]
                    .as_str()
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
            })
            .collect();
        for img in all {
            let id = img["Id"].as_str().unwrap_or("").to_string();
            let tagged = img["RepoTags"].as_array().is_some_and(|t| !t.is_empty());
            let created = img["Created"].as_f64().unwrap_or(0.0);
            let label_ok = labels.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => img["Labels"][k].as_str() == Some(v),
                None => !img["Labels"][l.as_str()].is_null(),
            });
            // A build's intermediate steps go with the image they lead to.
            if used.contains(&id)
                || parents.contains(&id)
                || (dangling_only && tagged)
                || until.is_some_and(|u| created >= u)
                || !label_ok
            {
                continue;
            }
            let size = img["Size"].as_u64().unwrap_or(0);
            if let Ok(report) = self.store.remove(&id, true).map(serde_json::Value::from) {
                self.emit_removal(&id, &report);
                deleted.extend(report.as_array().cloned().unwrap_or_default());
                reclaimed += size;
            }
        }
        self.sweep_snapshots();
        self.events()
            .emit(Event::new(kind::IMAGE, "prune", "").attr("reclaimed", reclaimed.to_string()));
        Ok(serde_json::json!({"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed}))
    }

    fn remove(&self, name: &str, force: bool) -> Result<serde_json::Value, ApiError> {
        self.check_in_use(name, force)?;
        let id = self.image_id(name).unwrap_or_default();
        let report = self
            .store
            .remove(name, force)
            .map(serde_json::Value::from)
            .map_err(api_error)?;
        self.emit_removal(&id, &report);
        self.sweep_snapshots();
        Ok(report)
    }

    fn check_save(&self, names: &[String]) -> Result<(), ApiError> {
        self.store.check_save(names).map_err(api_error)
    }

    fn save(&self, names: &[String], out: &mut dyn std::io::Write) -> Result<(), ApiError> {
        self.store.save(names, out).map_err(api_error)?;
        for id in names.iter().filter_map(|n| self.image_id(n)) {
            image_event(self.events(), "save", &id, &id);
        }
        Ok(())
    }

    fn load(
        &self,
        archive: &mut (dyn Read + Send),
        progress: &mut dyn FnMut(serde_json::Value),
    ) -> Result<Vec<String>, ApiError> {
        let loaded = self.store.load(archive, progress).map_err(api_error)?;
        for id in loaded.iter().filter_map(|n| self.image_id(n)) {
            image_event(self.events(), "load", &id, &id);
        }
        Ok(loaded)
    }

    fn history(&self, name: &str) -> Result<serde_json::Value, ApiError> {
        self.store
            .history(name)
            .map(serde_json::Value::from)
            .map_err(api_error)
    }

    fn build(
        &self,
        req: berth_api::BuildRequest,
        context: &mut (dyn Read + Send),
        progress: ProgressSender,
    ) -> Result<(), ApiError> {
        let cancel = cancel_when_gone(&progress);
        let dir = build_context::scratch_dir(&self.scratch)?;
        let (context_digests, dockerfile) = match req.remote.as_deref() {
            None => (build_context::extract(context, dir.path())?, req.dockerfile),
            Some(remote) => build_context::fetch_remote(
                remote,
                &dir,
                req.dockerfile,
                &fetch_for_build(self.dist.clone()),
                &cancel.flag,
            )?,
        };
        let opts = berth_build::BuildOptions {
            cancel: cancel.flag.clone(),
            dockerfile,
            tags: req.tags,
            build_args: req.build_args,
            labels: req.labels,
            target: req.target,
            no_cache: req.no_cache,
            pull: req.pull,
            quiet: req.quiet,
            remove: req.remove,
            force_remove: req.force_remove,
            network: req.network,
            extra_hosts: req.extra_hosts,
            platform: req.platform,
            cache_from: req.cache_from,
            context_digests,
        };
        let mut out = |m: serde_json::Value| {
            let _ = progress.send(m);
        };
        let built = self.builder.build(dir.path(), &opts, &mut out);
        match built {
            Ok(_) => Ok(()),
            Err(berth_build::Error::User(m)) => Err(ApiError::bad_request(m)),
            Err(berth_build::Error::Internal(m)) => Err(ApiError::internal(m)),
            Err(berth_build::Error::Step { message, code }) => {
                // After a step's output: the error line carries the step's exit code,
                // which clients use as theirs.
                let _ = progress.send(serde_json::json!({
                    "errorDetail": {"code": code, "message": message},
                    "error": message,
                }));
                Ok(())
            }
        }
    }

    fn pull(
        &self,
        req: PullRequest,
        progress: ProgressSender,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let dist = self.dist.clone();
        let events = self.events().clone();
        Box::pin(async move {
            let creds = credentials(req.auth.as_deref())?;
            let progress = Progress::new(progress);
            let reference = req.reference.clone();
            let done = if req.all_tags {
                dist.pull_all_tags(&req.reference, req.platform, creds, &progress)
                    .await
            } else {
                let pull = berth_distribution::PullRequest {
                    reference: req.reference,
                    platform: req.platform,
                };
                dist.pull(&pull, creds, &progress).await.map(|_| ())
            };
            done.map_err(dist_error)?;
            image_event(&events, "pull", &reference, &repository_of(&reference));
            Ok(())
        })
    }

    fn push(
        &self,
        name: String,
        tag: Option<String>,
        auth: Option<String>,
        progress: ProgressSender,
    ) -> BoxFuture<'static, Result<(), ApiError>> {
        let dist = self.dist.clone();
        let events = self.events().clone();
        Box::pin(async move {
            let creds = credentials(auth.as_deref())?;
            let reference = match &tag {
                Some(t) => format!("{name}:{t}"),
                None => name.clone(),
            };
            dist.push(&PushRequest { name, tag }, creds, &Progress::new(progress))
                .await
                .map_err(dist_error)?;
            image_event(&events, "push", &reference, &repository_of(&reference));
            Ok(())
        })
    }

    fn distribution(
        &self,
        name: String,
        auth: Option<String>,
    ) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        let dist = self.dist.clone();
        Box::pin(async move {
            let creds = credentials(auth.as_deref())?;
            dist.inspect_remote(&name, creds).await.map_err(dist_error)
        })
    }

    fn login(
        &self,
        body: serde_json::Value,
    ) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        let dist = self.dist.clone();
        Box::pin(async move {
            let mut creds: Credentials = serde_json::from_value(body)
                .map_err(|e| ApiError::bad_request(format!("invalid login request: {e}")))?;
            creds.fill_from_auth();
            let server = creds.server_address.clone();
            dist.login(&server, creds).await.map_err(dist_error)?;
            Ok(serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""}))
        })
    }
}
