//! Resource history, beyond Docker: berthd samples every running container once a
//! second and keeps, per container, the last 15 minutes at one-second resolution and the
//! last 24 hours at one-minute resolution (minute points average the seconds), so people
//! can look back without a separate monitoring stack. Points are 40 bytes; a container
//! costs at most ~94 KB (900 + 1440 points). The last raw sample also serves as
//! `precpu_stats` of a one-shot `stats`, which then answers at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::ContainerService;

/// Seconds at one-second resolution.
const FINE_POINTS: usize = 15 * 60;
/// Minutes at one-minute resolution.
const COARSE_POINTS: usize = 24 * 60;

/// One point of a container's history: usage during the interval that ends at `time`.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Point {
    /// Unix seconds at the end of the interval.
    pub time: u64,
    /// CPU use in percent of one CPU (200 = two CPUs busy), as `docker stats` shows it.
    pub cpu_percent: f32,
    /// Memory in use without reclaimable page cache, bytes.
    pub memory_bytes: u64,
    /// Memory limit (the host's memory when unlimited), bytes.
    pub memory_limit: u64,
    /// Processes.
    pub pids: u32,
    /// Network bytes received and sent per second, summed over interfaces.
    pub net_rx_rate: u32,
    /// See `net_rx_rate`.
    pub net_tx_rate: u32,
    /// Block I/O bytes read and written per second.
    pub blk_read_rate: u32,
    /// See `blk_read_rate`.
    pub blk_write_rate: u32,
}

/// Cumulative counters of one sample, to turn the next one into rates.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Raw {
    pub(crate) time_ns: u64,
    pub(crate) cpu_ns: u64,
    pub(crate) system_ns: u64,
    pub(crate) net_rx: u64,
    pub(crate) net_tx: u64,
    pub(crate) blk_read: u64,
    pub(crate) blk_write: u64,
}

/// One container's history.
#[derive(Default)]
struct Series {
    /// The run the points belong to (a new start keeps the history; a restart is
    /// visible as a drop in the counters, which are not carried across runs).
    started_at: String,
    last: Option<Raw>,
    fine: VecDeque<Point>,
    coarse: VecDeque<Point>,
    /// Seconds of the minute being gathered.
    minute: Vec<Point>,
}

impl Series {
    fn push(&mut self, p: Point) {
        if self.fine.len() == FINE_POINTS {
            self.fine.pop_front();
        }
        self.fine.push_back(p);
        if self
            .minute
            .first()
            .is_some_and(|f| f.time / 60 != p.time / 60)
        {
            let m = average(&self.minute);
            if self.coarse.len() == COARSE_POINTS {
                self.coarse.pop_front();
            }
            self.coarse.push_back(m);
            self.minute.clear();
        }
        self.minute.push(p);
    }
}

fn average(points: &[Point]) -> Point {
    let n = points.len().max(1) as u64;
    let sum = |f: &dyn Fn(&Point) -> u64| points.iter().map(f).sum::<u64>() / n;
    Point {
        time: points.last().map_or(0, |p| p.time),
        cpu_percent: points.iter().map(|p| p.cpu_percent).sum::<f32>() / n as f32,
        memory_bytes: sum(&|p| p.memory_bytes),
        memory_limit: points.last().map_or(0, |p| p.memory_limit),
        pids: sum(&|p| u64::from(p.pids)) as u32,
        net_rx_rate: sum(&|p| u64::from(p.net_rx_rate)) as u32,
        net_tx_rate: sum(&|p| u64::from(p.net_tx_rate)) as u32,
        blk_read_rate: sum(&|p| u64::from(p.blk_read_rate)) as u32,
        blk_write_rate: sum(&|p| u64::from(p.blk_write_rate)) as u32,
    }
}

/// Every container's history.
#[derive(Default)]
pub(crate) struct History {
    series: Mutex<HashMap<String, Series>>,
}

impl History {
    /// Adds a sample of container `id`'s run `started_at`; returns the point made (none
    /// for the first sample of a run: rates need two).
    fn add(&self, id: &str, started_at: &str, raw: Raw, gauges: Point) -> Option<Point> {
        let mut all = self.series.lock().expect("not poisoned");
        let s = all.entry(id.to_string()).or_default();
        if s.started_at != started_at {
            s.started_at = started_at.to_string();
            s.last = None;
        }
        let previous = s.last.replace(raw)?;
        let secs = (raw.time_ns.saturating_sub(previous.time_ns) as f64 / 1e9).max(1e-3);
        let rate = |now: u64, before: u64| (now.saturating_sub(before) as f64 / secs) as u32;
        let cpu_delta = raw.cpu_ns.saturating_sub(previous.cpu_ns) as f64;
        let system_delta = raw.system_ns.saturating_sub(previous.system_ns) as f64;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let p = Point {
            cpu_percent: if system_delta > 0.0 {
                (cpu_delta / system_delta * cpus * 100.0) as f32
            } else {
                0.0
            },
            net_rx_rate: rate(raw.net_rx, previous.net_rx),
            net_tx_rate: rate(raw.net_tx, previous.net_tx),
            blk_read_rate: rate(raw.blk_read, previous.blk_read),
            blk_write_rate: rate(raw.blk_write, previous.blk_write),
            ..gauges
        };
        s.push(p);
        Some(p)
    }

    /// The last raw sample of a container, if taken within `fresh`.
    pub(crate) fn last_raw(&self, id: &str, fresh: Duration) -> Option<Raw> {
        let all = self.series.lock().expect("not poisoned");
        let raw = all.get(id)?.last?;
        let age = now_ns().saturating_sub(raw.time_ns);
        (age <= fresh.as_nanos() as u64).then_some(raw)
    }

    /// Points since `since` (Unix seconds), at one-second or one-minute resolution.
    pub(crate) fn points(&self, id: &str, since: u64, per_minute: bool) -> Vec<Point> {
        let all = self.series.lock().expect("not poisoned");
        let Some(s) = all.get(id) else {
            return Vec::new();
        };
        let list = if per_minute { &s.coarse } else { &s.fine };
        list.iter().filter(|p| p.time >= since).copied().collect()
    }

    fn forget_except(&self, keep: &dyn Fn(&str) -> bool) {
        self.series
            .lock()
            .expect("not poisoned")
            .retain(|id, _| keep(id));
    }
}

pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl ContainerService {
    /// Starts the thread that samples running containers once a second (berthd runs
    /// one).
    pub fn spawn_sampler(&self) -> std::thread::JoinHandle<()> {
        let service = self.clone();
        std::thread::Builder::new()
            .name("stats-sampler".into())
            .spawn(move || {
                loop {
                    let began = std::time::Instant::now();
                    service.sample_all();
                    std::thread::sleep(Duration::from_secs(1).saturating_sub(began.elapsed()));
                }
            })
            .expect("spawn the stats sampler thread")
    }

    fn sample_all(&self) {
        let Ok(all) = self.all() else { return };
        let known: std::collections::HashSet<String> = all.iter().map(|r| r.id.clone()).collect();
        // Removed containers' histories go with them.
        self.history.forget_except(&|id| known.contains(id));
        // The host's CPU time and memory once per pass, as dockerd's collector reads
        // them once per tick: every container's rate is against the same reading.
        let system_ns = crate::stats::system_cpu_ns();
        let host_memory = crate::stats::host_memory();
        for rec in all {
            if rec.state.status != "running" {
                continue;
            }
            let Some(cg) = self
                .runtime_container(&rec.id)
                .ok()
                .and_then(|c| c.stats().ok())
            else {
                continue;
            };
            let (rx, tx) = crate::stats::network_totals(rec.state.pid);
            let (read, write) = crate::stats::blkio_totals(&cg);
            let raw = Raw {
                time_ns: now_ns(),
                cpu_ns: cg.cpu.usage.total,
                system_ns,
                net_rx: rx,
                net_tx: tx,
                blk_read: read,
                blk_write: write,
            };
            let gauges = Point {
                time: raw.time_ns / 1_000_000_000,
                memory_bytes: crate::stats::memory_without_cache(&cg),
                memory_limit: crate::stats::memory_limit(&cg, host_memory),
                pids: cg.pids.current as u32,
                ..Point::default()
            };
            self.history
                .add(&rec.id, &rec.state.started_at, raw, gauges);
        }
    }

    /// `GET /containers/{id}/stats/history`: the container's points since `since` (Unix
    /// seconds), per second (the last 15 minutes) or per minute (the last 24 hours).
    pub fn stats_history(
        &self,
        name: &str,
        since: u64,
        per_minute: bool,
    ) -> crate::Result<Vec<Point>> {
        let rec = self.get(name)?;
        Ok(self.history.points(&rec.id, since, per_minute))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(t: u64, cpu: u64, rx: u64) -> Raw {
        Raw {
            time_ns: t * 1_000_000_000,
            cpu_ns: cpu,
            system_ns: t * 2_000_000_000,
            net_rx: rx,
            ..Raw::default()
        }
    }

    #[test]
    fn points_are_rates_and_minutes_average_seconds() {
        let h = History::default();
        let g = |t: u64| Point {
            time: t,
            memory_bytes: 100 * t,
            ..Point::default()
        };
        assert!(h.add("c", "run1", raw(60, 0, 0), g(60)).is_none());
        for t in 61..=121 {
            // Half a CPU busy on a machine whose system time grows 2 s a second.
            h.add(
                "c",
                "run1",
                raw(t, (t - 60) * 500_000_000, (t - 60) * 1000),
                g(t),
            );
        }
        let fine = h.points("c", 0, false);
        assert_eq!(fine.len(), 61);
        assert_eq!(fine[0].net_rx_rate, 1000);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f32;
        assert!(
            (fine[0].cpu_percent - 25.0 * cpus).abs() < 0.01,
            "{}",
            fine[0].cpu_percent
        );
        let coarse = h.points("c", 0, true);
        assert_eq!(coarse.len(), 1, "one whole minute (61..=119) so far");
        assert_eq!(coarse[0].time, 119);
        assert_eq!(coarse[0].memory_bytes, 100 * 90);
        assert_eq!(h.points("c", 100, false).len(), 22);
        // A new run starts its rates afresh.
        assert!(h.add("c", "run2", raw(200, 0, 0), g(200)).is_none());
        h.forget_except(&|_| false);
        assert!(h.points("c", 0, false).is_empty());
    }

    #[test]
    fn the_fine_series_is_bounded() {
        let h = History::default();
        for t in 0..(FINE_POINTS as u64 + 100) {
            h.add("c", "r", raw(t, 0, 0), Point::default());
        }
        assert_eq!(h.points("c", 0, false).len(), FINE_POINTS);
    }
}
