//! `just chaos`: every chaos scenario (`newsroom_e2e::chaos::Scenario::all`) against the real
//! Kafka and Redis, one after the other, then one table and the exit code: 0 when every
//! promise held, 1 otherwise. `CHAOS_ONLY=<text>` runs the scenarios whose name contains it.

// The table is this binary's output.
#![allow(clippy::print_stdout)]

use newsroom_e2e::chaos::{self, Scenario};

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let only = std::env::var("CHAOS_ONLY").unwrap_or_default();
    let mut rows = Vec::new();
    for scenario in Scenario::all()
        .into_iter()
        .filter(|s| s.name.contains(&only))
    {
        eprintln!("chaos: {} …", scenario.name);
        let row = chaos::run(&scenario).await;
        eprintln!("chaos: {} done: {:?}", scenario.name, row.violations());
        rows.push(row);
    }
    println!("\n{}", chaos::table(&rows));
    let broken = rows.iter().filter(|r| !r.violations().is_empty()).count();
    if broken > 0 {
        println!("{broken} scenario(s) broke a promise");
        std::process::exit(1);
    }
    println!("every promise held");
}
