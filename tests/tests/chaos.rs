//! The short chaos set in `just test` (the whole set is `just chaos`): notification SIGKILLed
//! mid-load (its own process), a Redis flush mid-load, poison on every consumed topic, the leader of
//! `stories.raw` SIGKILLed in a three-broker cluster, every service's Redis link stalled 10 s
//! (Toxiproxy). Each must hold every
//! promise: no acknowledged story lost, every story in the feed store at its latest version,
//! every follower alerted once, DLQ records only for poison.

use newsroom_e2e::chaos::{self, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_short_chaos_set_holds_every_promise() {
    let mut rows = Vec::new();
    for scenario in Scenario::short() {
        rows.push(chaos::run(&scenario).await);
    }
    let table = chaos::table(&rows);
    eprintln!("{table}");
    let broken: Vec<_> = rows
        .iter()
        .filter(|r| !r.violations().is_empty())
        .map(|r| format!("{}: {}", r.name, r.violations().join("; ")))
        .collect();
    assert!(broken.is_empty(), "{}\n{table}", broken.join("\n"));
}
