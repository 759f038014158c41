//! `newsroom demo`: loads the demo — a reader who follows three topics, optionally a webhook
//! phone for them, the seed story (dated today unless `--as-published`), a wire's take on the
//! same event, BBC stories from the sample, and one flash story that rings the phone. Progress notes go to standard error; nothing is printed on standard output.

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
    /// Keep the seed story's own dates (November 2022). By default the demo presents it as
    /// today's news: dated now, it leads the demo reader's feed beside the BBC stories (which
    /// carry no date, so they are today's too) and has related stories within two days.
    #[arg(long)]
    as_published: bool,
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let Args {
        data,
        count,
        user,
        webhook,
        as_published,
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
    let seed = if as_published {
        seed
    } else {
        dated_now(&seed).ok_or_else(|| {
            Error::SeedRefused(format!("{}: not a NINJS object", seed_path.display()))
        })?
    };
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

    // The same news from a wire, in its own words: the seed's story page lists it.
    let r = ingest
        .submit_story(SubmitStoryRequest {
            story: Some(wire_follow_up()),
            idempotency_key: String::new(),
        })
        .await?
        .into_inner();
    eprintln!(
        "wire follow-up {} v{} {}",
        r.story_id,
        r.version,
        outcome_name(&r)
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

/// A NINJS document with its creation dates set to now (whole seconds, UTC), so the demo's
/// story reads as today's news; `None` if it is not a JSON object.
fn dated_now(ninjs: &[u8]) -> Option<Vec<u8>> {
    let mut doc: serde_json::Value = serde_json::from_slice(ninjs).ok()?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let obj = doc.as_object_mut()?;
    for field in ["firstcreated", "versioncreated"] {
        obj.insert(field.to_owned(), serde_json::Value::String(now.clone()));
    }
    serde_json::to_vec(&doc).ok()
}

/// A wire's take on the seed story's event, in other words (the demo's related story).
fn wire_follow_up() -> Story {
    Story {
        source: "demo-wire".to_owned(),
        guid: "demo-wire-wuzhen-follow-up".to_owned(),
        headline: "Chinese leader calls for cross-border cooperation on the internet as US \
                   chip makers attend Wuzhen forum"
            .to_owned(),
        body_html: "<p>China's president told the World Internet Conference in Wuzhen that \
                    countries should work together on digital technology and cyberspace \
                    rules, in a letter read out to delegates.</p><p>Executives of American \
                    technology companies including Intel and IBM were among those attending \
                    the annual forum in Zhejiang province.</p>"
            .to_owned(),
        language: "en".to_owned(),
        ..Default::default()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_is_dated_now_and_keeps_everything_else() {
        let seed = br#"{"uri":"urn:x","versioncreated":"2022-11-09T09:30:00Z","firstcreated":"2022-11-09T09:30:00Z","headline":"H"}"#;
        let out: serde_json::Value = serde_json::from_slice(&dated_now(seed).unwrap()).unwrap();
        let year = chrono::Utc::now().format("%Y-").to_string();
        assert!(out["versioncreated"].as_str().unwrap().starts_with(&year));
        assert_eq!(out["firstcreated"], out["versioncreated"]);
        assert_eq!(out["headline"], "H");
        assert_eq!(out["uri"], "urn:x");
        assert_eq!(dated_now(b"[1]"), None);
        assert_eq!(dated_now(b"nonsense"), None);
    }
}
