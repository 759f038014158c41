//! `newsroom tail`: a topic's records decoded to JSON, one a line (the reading and decoding is
//! [`crate::ops::tail`]).

use std::time::Duration;

use super::print_json;
use crate::ops;
use crate::{Error, Globals};

#[derive(clap::Args)]
pub struct Args {
    topic: String,
    /// Start at the oldest retained record (default: only new records).
    #[arg(long)]
    from_beginning: bool,
    /// Stop after this many records.
    #[arg(long)]
    count: Option<usize>,
    /// Stop after this long; with --count, fewer records than asked is exit 75.
    #[arg(long)]
    timeout_secs: Option<u64>,
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let from = if args.from_beginning {
        ops::From::Beginning
    } else {
        ops::From::End
    };
    let brokers = globals.brokers.clone();
    // librdkafka's base consumer blocks: off the runtime's threads.
    tokio::task::spawn_blocking(move || {
        ops::tail(
            &brokers,
            &args.topic,
            from,
            args.count,
            args.timeout_secs.map(Duration::from_secs),
            |record| print_json(&record),
        )
    })
    .await??;
    Ok(())
}
