//! What the benchmark binaries share: a load driver, open-loop (paced) or closed-loop, and the
//! latency figures of a run.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// The latencies of one run, and how long it took.
#[derive(Default)]
pub struct Stats {
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl Stats {
    pub fn add(&mut self, other: Stats) {
        self.latencies.extend(other.latencies);
        self.elapsed += other.elapsed;
    }
    pub fn pct(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l.get(((l.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    }
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `op` from `concurrency` workers for `duration` (or until `op` ran `max` times); with
/// `rate`, paced open-loop.
pub async fn drive<F, Fut>(
    concurrency: usize,
    duration: Duration,
    rate: Option<f64>,
    max: u64,
    op: F,
) -> Stats
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w as u64;
            let interval = rate.map(|r| Duration::from_secs_f64(concurrency as f64 / r));
            // Workers start spread over one interval: arrivals evenly paced, not in bursts.
            let mut next =
                Instant::now() + interval.unwrap_or_default() * w as u32 / concurrency as u32;
            while started.elapsed() < duration && i < max {
                if let Some(iv) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += iv;
                }
                let t = Instant::now();
                op(i).await;
                lat.push(t.elapsed());
                i += concurrency as u64;
            }
            lat
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    Stats {
        latencies,
        elapsed: started.elapsed(),
    }
}

/// The IPTC Media Topic of a BBC sample category (as the benchmarks file their stories).
pub fn topic_of(category: &str) -> &'static str {
    match category {
        "business" => "medtop:04000000",
        "entertainment" => "medtop:01000000",
        "politics" => "medtop:11000000",
        "sport" => "medtop:15000000",
        _ => "medtop:13000000",
    }
}
