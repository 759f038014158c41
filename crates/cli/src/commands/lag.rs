//! `newsroom lag`: a consumer group's lag per partition (from [`crate::ops::consumer_lag`]), as
//! a table or JSON lines; with `--max-lag`, an alerting probe (exit 3).

use super::print_json;
use crate::ops;
use crate::{Error, Globals};

#[derive(clap::Args)]
pub struct Args {
    /// The consumer group, e.g. newsroom-enrichment.
    #[arg(long)]
    group: String,
    /// Full topic names (repeat); default: the topics of the system (with --topic-prefix)
    /// where the group has committed, i.e. the ones it consumes.
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// Prefix of the default topic names (NEWSROOM_TOPIC_PREFIX).
    #[arg(long, env = "NEWSROOM_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    /// Exit 3 when any partition's lag is above this.
    #[arg(long)]
    max_lag: Option<i64>,
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let json = globals.json();
    let Args {
        group,
        topics,
        topic_prefix,
        max_lag,
    } = args;
    let (topics, which) = if topics.is_empty() {
        let all = newsroom_platform::kafka::TOPICS
            .iter()
            .map(|t| format!("{topic_prefix}{}", t.name))
            .collect();
        (all, ops::Topics::Consumed)
    } else {
        (topics, ops::Topics::Named)
    };
    let brokers = globals.brokers.clone();
    // librdkafka's base consumer blocks: off the runtime's threads.
    let lags =
        tokio::task::spawn_blocking(move || ops::consumer_lag(&brokers, &group, &topics, which))
            .await??;
    if !json {
        println!(
            "{:<32} {:<40} {:>9} {:>12} {:>12} {:>8}",
            "GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"
        );
    }
    for l in &lags {
        if json {
            print_json(&serde_json::to_value(l)?);
        } else {
            let committed = l.committed.map_or("-".to_owned(), |c| c.to_string());
            println!(
                "{:<32} {:<40} {:>9} {:>12} {:>12} {:>8}",
                l.group, l.topic, l.partition, committed, l.end, l.lag
            );
        }
    }
    // Every line is printed first: the probe's log shows which partitions are behind.
    if let Some(max) = max_lag
        && let Some(l) = lags.iter().find(|l| l.lag > max)
    {
        return Err(Error::LagAbove {
            topic: l.topic.clone(),
            partition: l.partition,
            lag: l.lag,
            max,
        });
    }
    Ok(())
}
