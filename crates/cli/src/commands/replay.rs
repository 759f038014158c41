//! `newsroom replay`: the command's arguments and its report; the replay itself (reading the
//! range, writing back, waiting for enrichment) is [`crate::replay`].

use std::time::Duration;

use super::print_json;
use crate::replay::{Position, ReplayRequest};
use crate::{Error, Globals, progress};

#[derive(clap::Args)]
pub struct Args {
    topic: String,
    /// Partition to read (repeat); default: every partition.
    #[arg(long = "partition")]
    partitions: Vec<i32>,
    /// Start of the range: an offset, an RFC 3339 time or `beginning`.
    #[arg(long, default_value = "beginning")]
    from: Position,
    /// End of the range, excluded: an offset, an RFC 3339 time or `end` (the end when the
    /// replay starts).
    #[arg(long, default_value = "end")]
    to: Position,
    /// Only this story's records.
    #[arg(long)]
    story: Option<String>,
    /// Read and count; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Then wait until enrichment's consumer group has handled every record written.
    #[arg(long)]
    wait: bool,
    /// Enrichment's consumer group (NEWSROOM_CONSUMER_GROUP of the enrichment service).
    #[arg(long, default_value = "newsroom-enrichment")]
    group: String,
    /// With --wait: give up (exit 75) after this long.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let json = globals.json();
    let request = ReplayRequest {
        brokers: globals.brokers.clone(),
        source: args.topic,
        partitions: args.partitions,
        from: args.from,
        to: args.to,
        story: args.story,
        dry_run: args.dry_run,
        wait_for_group: args.wait.then_some(args.group),
        wait_timeout: Duration::from_secs(args.timeout_secs),
    };
    let bar = progress::bar(0, !json);
    // The replay is blocking (librdkafka's base consumer): off the runtime's threads.
    let report = tokio::task::spawn_blocking({
        let bar = bar.clone();
        move || crate::replay::replay(&request, &bar)
    })
    .await?;
    bar.finish_and_clear();
    let report = report?;
    if json {
        print_json(&serde_json::to_value(&report)?);
    } else {
        let written = if report.dry_run {
            "would replay"
        } else {
            "replayed"
        };
        println!(
            "{written} {} of {} records from {} to {}: {} superseded by a newer version, {} skipped",
            report.replayed,
            report.read,
            report.source,
            report.target,
            report.superseded,
            report.skipped
        );
        if let Some(handled) = report.handled {
            println!(
                "enrichment handled {handled}; {} new records in the dead-letter topic meanwhile",
                report.new_in_dlq.unwrap_or_default()
            );
        }
    }
    Ok(())
}
