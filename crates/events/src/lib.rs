//! # berth-events
//!
//! What happened in the engine, told the way Docker tells it: `GET /events` messages for
//! containers, images, networks and volumes.
//!
//! **Owns:** the [`Event`] shape (Docker's JSON, with the deprecated `status`/`id`/`from`
//! fields dockerd still fills for containers and images), the bus that hands every event to
//! live [`Subscription`]s, the bounded journal on disk that lets `--since` reach back
//! across daemon restarts (dockerd keeps only 256 events in memory), and Docker's event
//! filters ([`EventFilter`]).
//! **Does not:** decide what is worth an event; the services that change state emit them.
//!
//! The journal is two JSON-lines files, the current one rotated into `events.1.jsonl`
//! when it passes its size; each event is one `write(2)` under a lock, so a killed
//! daemon loses nothing the kernel already has and a torn last line is skipped on read.

mod filter;
mod journal;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use filter::EventFilter;
use journal::Journal;

/// Event types, as Docker names them.
pub mod kind {
    /// Containers.
    pub const CONTAINER: &str = "container";
    /// Images.
    pub const IMAGE: &str = "image";
    /// Networks.
    pub const NETWORK: &str = "network";
    /// Volumes.
    pub const VOLUME: &str = "volume";
    /// The daemon itself.
    pub const DAEMON: &str = "daemon";
    /// The builder (build cache prunes).
    pub const BUILDER: &str = "builder";
}

/// Who an event is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// Its id (a container or image id, a network id, a volume name).
    #[serde(rename = "ID")]
    pub id: String,
    /// Its name, image, labels and what the action adds (`exitCode`, `signal`...).
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event, in the JSON `GET /events` streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Deprecated copy of `Action` (containers and images only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Deprecated copy of `Actor.ID` (containers and images only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Deprecated: a container's image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// `container`, `image`, `network`, `volume`, `daemon`...
    #[serde(rename = "Type")]
    pub kind: String,
    /// `create`, `start`, `die`, `health_status: healthy`...
    #[serde(rename = "Action")]
    pub action: String,
    /// What it happened to.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// Always `local` here (swarm's events are `swarm`).
    pub scope: String,
    /// Unix seconds.
    pub time: i64,
    /// Unix nanoseconds; unique and increasing within one engine.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    /// An event of `kind` doing `action` to `id`; the time is set when emitted.
    pub fn new(kind: &str, action: impl Into<String>, id: impl Into<String>) -> Self {
        Event {
            status: String::new(),
            id: String::new(),
            from: String::new(),
            kind: kind.to_string(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: BTreeMap::new(),
            },
            scope: "local".into(),
            time: 0,
            time_nano: 0,
        }
    }

    /// Adds one attribute.
    pub fn attr(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.actor.attributes.insert(key.into(), value.into());
        self
    }

    /// Adds a JSON object of string values (labels) as attributes; others are skipped.
    pub fn labels(mut self, labels: &serde_json::Value) -> Self {
        if let Some(map) = labels.as_object() {
            for (k, v) in map {
                if let Some(v) = v.as_str() {
                    self.actor.attributes.insert(k.clone(), v.to_string());
                }
            }
        }
        self
    }

    /// Fills the deprecated fields dockerd still sends for containers and images.
    fn fill_legacy(&mut self) {
        if self.kind == kind::CONTAINER || self.kind == kind::IMAGE {
            self.status = self.action.clone();
            self.id = self.actor.id.clone();
        }
        if self.kind == kind::CONTAINER {
            self.from = self
                .actor
                .attributes
                .get("image")
                .cloned()
                .unwrap_or_default();
        }
    }
}

/// How many events a slow subscriber may fall behind before it reads them back from the
/// journal instead.
const LIVE_BUFFER: usize = 1024;

/// The default size of each journal file: with two files, the last ~8000 events.
pub const DEFAULT_JOURNAL_BYTES: u64 = 2 << 20;

/// The engine's event bus. Cheap to clone; all clones share one journal.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    journal: Mutex<Journal>,
    /// The journal's files, oldest first, for readers.
    files: [std::path::PathBuf; 2],
    live: broadcast::Sender<Arc<Event>>,
}

impl Events {
    /// Opens (or starts) the journal in `dir`, each of its two files up to `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        let journal = Journal::open(dir, max_bytes)?;
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        Ok(Events {
            inner: Arc::new(Inner {
                journal: Mutex::new(journal),
                files: journal::files(dir),
                live,
            }),
        })
    }

    /// Stamps `event` with the time, journals it and hands it to every subscriber.
    /// A journal that cannot be written is logged, not fatal: the state change the event
    /// tells of has happened already.
    pub fn emit(&self, mut event: Event) {
        event.fill_legacy();
        let mut journal = self.inner.journal.lock().expect("not poisoned");
        let now = now_nanos().max(journal.last_nano() + 1);
        event.time_nano = now;
        event.time = now.div_euclid(1_000_000_000);
        if let Err(e) = journal.append(&event) {
            tracing::warn!("event journal: {e}");
        }
        // Sent under the lock so that subscribers see events in time order.
        let _ = self.inner.live.send(Arc::new(event));
    }

    /// Subscribes to events from now on, after the journal's events between `since` and
    /// `until` (Unix nanoseconds, both inclusive) when either is given, as dockerd does.
    pub fn subscribe(&self, since: Option<i64>, until: Option<i64>) -> Subscription {
        let (live, cutoff) = {
            let journal = self.inner.journal.lock().expect("not poisoned");
            (self.inner.live.subscribe(), journal.last_nano())
        };
        let past = if since.is_some() || until.is_some() {
            let from = since.unwrap_or(i64::MIN);
            let to = until.unwrap_or(i64::MAX).min(cutoff);
            self.read_range(from, to)
        } else {
            VecDeque::new()
        };
        Subscription {
            events: self.clone(),
            past,
            live,
            last: cutoff,
        }
    }

    /// Journal events with `from <= time <= to`.
    fn read_range(&self, from: i64, to: i64) -> VecDeque<Arc<Event>> {
        journal::read(&self.inner.files)
            .into_iter()
            .filter(|e| e.time_nano >= from && e.time_nano <= to)
            .map(Arc::new)
            .collect()
    }
}

/// A subscriber's view: past events first, then live ones, each once, in time order.
pub struct Subscription {
    events: Events,
    past: VecDeque<Arc<Event>>,
    live: broadcast::Receiver<Arc<Event>>,
    /// The newest event handed out (or the journal's newest at subscription).
    last: i64,
}

impl Subscription {
    /// The next of the journal's events the subscription began with; `None` once they
    /// are all handed out.
    pub fn next_past(&mut self) -> Option<Arc<Event>> {
        self.past.pop_front()
    }

    /// The next event; waits for one. `None` only if the bus is gone.
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        if let Some(e) = self.past.pop_front() {
            return Some(e);
        }
        loop {
            match self.live.recv().await {
                Ok(e) if e.time_nano > self.last => {
                    self.last = e.time_nano;
                    return Some(e);
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind: what was dropped is in the journal.
                    let missed = self.events.read_range(self.last + 1, i64::MAX);
                    if let Some(e) = missed.back() {
                        self.last = e.time_nano;
                    }
                    self.past = missed;
                    if let Some(e) = self.past.pop_front() {
                        return Some(e);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn events_carry_dockers_fields_and_increasing_times() {
        let dir = tempfile::tempdir().unwrap();
        let events = Events::open(dir.path(), DEFAULT_JOURNAL_BYTES).unwrap();
        let mut sub = events.subscribe(None, None);
        for action in ["create", "start"] {
            events.emit(
                Event::new(kind::CONTAINER, action, "abc")
                    .attr("image", "busybox")
                    .attr("name", "web"),
            );
        }
        let (a, b) = block_on(async { (sub.next().await.unwrap(), sub.next().await.unwrap()) });
        assert!(b.time_nano > a.time_nano);
        let json = serde_json::to_value(&*a).unwrap();
        assert_eq!(json["status"], "create");
        assert_eq!(json["id"], "abc");
        assert_eq!(json["from"], "busybox");
        assert_eq!(json["Type"], "container");
        assert_eq!(json["Actor"]["Attributes"]["name"], "web");
        assert_eq!(json["scope"], "local");
        assert_eq!(json["time"], a.time_nano / 1_000_000_000);
        let net = serde_json::to_value(Event::new(kind::NETWORK, "create", "n")).unwrap();
        assert!(net.get("status").is_none(), "{net}");
    }

    #[test]
    fn the_journal_replays_across_reopen_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let events = Events::open(dir.path(), 4096).unwrap();
            for i in 0..200 {
                events.emit(Event::new(kind::VOLUME, "create", format!("v{i}")));
            }
            events.subscribe(Some(0), None).past.len()
        };
        // Bounded: two files of 4 KiB hold far fewer than 200 events.
        assert!(first > 10 && first < 200, "{first}");
        let size: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(size <= 2 * 4096 + 512, "{size}");
        let events = Events::open(dir.path(), 4096).unwrap();
        let past: Vec<_> = events.subscribe(Some(0), None).past.into_iter().collect();
        assert_eq!(past.len(), first);
        assert_eq!(past.last().unwrap().actor.id, "v199");
        // Times keep increasing after a reopen.
        events.emit(Event::new(kind::VOLUME, "destroy", "v199"));
        let all: Vec<_> = events.subscribe(Some(0), None).past.into_iter().collect();
        assert!(all.windows(2).all(|w| w[0].time_nano < w[1].time_nano));
    }

    #[test]
    fn since_and_until_select_past_events_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let events = Events::open(dir.path(), DEFAULT_JOURNAL_BYTES).unwrap();
        events.emit(Event::new(kind::IMAGE, "tag", "one"));
        let mid = now_nanos();
        events.emit(Event::new(kind::IMAGE, "tag", "two"));
        let ids = |s: Subscription| {
            s.past
                .iter()
                .map(|e| e.actor.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(events.subscribe(Some(mid), None)), ["two"]);
        assert_eq!(ids(events.subscribe(None, Some(mid))), ["one"]);
        assert!(ids(events.subscribe(None, None)).is_empty());
        drop(events);
        let file = dir.path().join("events.jsonl");
        let mut text = std::fs::read_to_string(&file).unwrap();
        text.push_str("{\"Type\":\"imag");
        std::fs::write(&file, text).unwrap();
        let events = Events::open(dir.path(), DEFAULT_JOURNAL_BYTES).unwrap();
        assert_eq!(ids(events.subscribe(Some(0), None)), ["one", "two"]);
        events.emit(Event::new(kind::IMAGE, "tag", "three"));
        assert_eq!(
            ids(events.subscribe(Some(0), None)),
            ["one", "two", "three"]
        );
    }

    #[test]
    fn a_lagging_subscriber_reads_what_it_missed_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let events = Events::open(dir.path(), DEFAULT_JOURNAL_BYTES).unwrap();
        let mut sub = events.subscribe(None, None);
        let n = LIVE_BUFFER + 50;
        for i in 0..n {
            events.emit(Event::new(kind::CONTAINER, "start", format!("c{i}")));
        }
        let got = block_on(async {
            let mut got = Vec::new();
            for _ in 0..n {
                got.push(sub.next().await.unwrap().actor.id.clone());
            }
            got
        });
        let want: Vec<_> = (0..n).map(|i| format!("c{i}")).collect();
        assert_eq!(got, want);
    }
}
