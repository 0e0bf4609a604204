//! Times create → start → wait → delete through the library, the way `berth-shim` will call
//! it (no exec of a CLI per step). Used by `bench/runtime.sh`.
//! usage: lifecycle_bench BUNDLE STATE_ROOT RUNS

use std::path::PathBuf;
use std::time::Instant;

use berth_runtime::{Container, CreateOptions, StateRoot, sys};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bundle = PathBuf::from(&args[1]);
    let root = StateRoot::open(&args[2]).expect("state root");
    let runs: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(100);
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs + 5 {
        let start = Instant::now();
        let id = format!("lib-{i}");
        let c =
            berth_runtime::create(&root, &id, &bundle, &CreateOptions::default()).expect("create");
        c.start().expect("start");
        sys::waitpid(c.record.pid, 0).expect("wait");
        Container::load(&root, &id)
            .expect("load")
            .delete(false)
            .expect("delete");
        // The first runs warm caches, as hyperfine's --warmup does.
        if i >= 5 {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "library        {mean:7.2} ms mean, {:.2} ms median over {runs} runs",
        sorted[runs / 2]
    );
}
