//! `newsroom demo`: loads the demo — a reader who follows three topics, optionally a webhook
//! phone for them, the seed story, BBC stories from the sample, and one flash story that rings
//! the phone. Progress notes go to standard error; nothing is printed on standard output.

use std::path::PathBuf;
use std::time::Duration;

use newsroom_proto::v1::{Outcome, Story, SubmitStoryRequest};

use super::follow::follow_topic;
use super::register_webhook::register;
use super::submit::{import, outcome_name};
use crate::bbc::{self, ReadError};
use crate::{Error, Globals, progress};

#[derive(clap::Args)]
pub struct Args {
    /// The shared data folder (seed-story.ninjs.json, bbc-news.jsonl).
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// BBC stories to load.
    #[arg(long, default_value_t = 200)]
    count: usize,
    #[arg(long, default_value = "demo")]
    user: String,
    /// Webhook URL of the demo reader's phone (see `webhook-sink`); none if empty.
    #[arg(long, default_value = "")]
    webhook: String,
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let Args {
        data,
        count,
        user,
        webhook,
    } = args;
    let user = user.as_str();
    let mut ingest = globals.ingest_client().await?;
    let mut rec = globals.recommendation_client().await?;
    for topic in ["medtop:13000000", "medtop:11000000", "medtop:04000000"] {
        follow_topic(&mut rec, user, topic).await?;
    }
    eprintln!("{user} follows science and technology, politics, economy");
    if !webhook.is_empty() {
        let mut notif = globals.notification_client().await?;
        register(&mut notif, user, &format!("{user}-phone"), &webhook).await?;
        eprintln!("{user}'s phone is the webhook {webhook}");
    }
    // Give notification a moment to read the profile before the flash story arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let seed_path = data.join("seed-story.ninjs.json");
    let seed = std::fs::read(&seed_path).map_err(|e| ReadError::file(&seed_path, e))?;
    let imported = import(&mut ingest, seed, "ninjs", "scmp").await?;
    let r = imported
        .results
        .first()
        .ok_or_else(|| Error::SeedRefused(format!("{:?}", imported.errors)))?;
    eprintln!(
        "seed story {} v{} {}",
        r.story_id,
        r.version,
        outcome_name(r)
    );

    let articles = bbc::read(&data.join("bbc-news.jsonl"), usize::MAX)?;
    // Every fifth article, so all five BBC categories are in the demo.
    let stories: Vec<SubmitStoryRequest> = articles
        .iter()
        .step_by(5)
        .take(count)
        .map(|a| SubmitStoryRequest {
            story: Some(a.to_story()),
            idempotency_key: String::new(),
        })
        .collect();
    let n = stories.len();
    let bar = progress::bar(n as u64, !globals.json());
    bar.set_message("submitting BBC stories");
    let mut responses = ingest
        .submit_stories(tokio_stream::iter(stories))
        .await?
        .into_inner();
    let mut accepted = 0;
    while let Some(r) = responses.message().await? {
        bar.inc(1);
        if r.outcome() != Outcome::Duplicate {
            accepted += 1;
        }
    }
    bar.finish_and_clear();
    eprintln!("{n} BBC stories submitted ({accepted} new or updated)");

    let r = ingest
        .submit_story(SubmitStoryRequest {
            story: Some(flash()),
            idempotency_key: String::new(),
        })
        .await?
        .into_inner();
    eprintln!(
        "flash story {} v{} {}",
        r.story_id,
        r.version,
        outcome_name(&r)
    );
    Ok(())
}

/// The flash story: urgency 1, so it alerts the reader's phone.
fn flash() -> Story {
    Story {
        source: "newsroom-demo".to_owned(),
        // A new flash each run, so the phone rings again on every `just up` (the wording is the
        // same: enrichment puts the runs in one near-duplicate cluster, the feed shows one).
        guid: format!(
            "demo-flash-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ),
        headline: "FLASH: Major internet outage takes down cloud services and mobile networks"
            .to_owned(),
        body_html: "<p>A major outage at a cloud computing provider has taken down websites, \
                    apps and mobile data networks across several countries, engineers said.</p>"
            .to_owned(),
        urgency: 1,
        language: "en".to_owned(),
        ..Default::default()
    }
}
