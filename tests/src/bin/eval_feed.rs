//! `just eval-feed`: an offline evaluation of the feed against a recency-only baseline.
//!
//! The BBC corpus (2,225 stories, five categories, each with its IPTC topic) is loaded into a
//! fresh Redis prefix with publication times spread over the last two days. 200 simulated
//! readers, following nothing, each prefer one or two categories. For five rounds each reader
//! is shown their feed's first ten stories and reads each with probability 0.7 when it is in a
//! preferred category and 0.05 otherwise (reads go through the same interaction path as
//! `RecordInteraction`). After the rounds, precision@10 = the share of the first ten stories
//! that are in the reader's preferred categories, averaged over readers; the baseline shows the
//! ten newest unread stories. The random source is seeded: the run is repeatable.

#![allow(clippy::print_stdout)]

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use newsroom_e2e::bench::topic_of;
use newsroom_e2e::{Pipeline, Service, data_file};
use newsroom_proto::v1::{EnrichedStory, Enrichment, Interaction, InteractionKind, TopicScore};
use newsroom_recommendation::store::{FeedStore, Index};
use newsroom_recommendation::{feed, interests};

const READERS: usize = 200;
const ROUNDS: usize = 5;
const CATEGORIES: [&str; 5] = ["business", "entertainment", "politics", "sport", "tech"];

/// xorshift64*: small, seeded, repeatable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Only for its isolated Redis prefix; the feed is computed in process.
    let pipeline = Pipeline::start_with(&[Service::Ingest], &[("RUST_LOG", "error")]).await;
    let redis = pipeline.redis().await;
    let store = FeedStore::new(redis, Duration::from_secs(14 * 86400), 10_000);
    // The service's own first-page path, prepared entries included.
    let prepared = feed::Prepared::new(feed::prepared::DEFAULT_READERS);
    let mut rng = Rng(0x5eed_1234_abcd_9876);

    let articles: Vec<newsroom_cli::bbc::BbcArticle> = data_file("bbc-news.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("bbc line"))
        .collect();
    let now = SystemTime::now();
    let mut category_of = std::collections::HashMap::new();
    for (i, a) in articles.iter().enumerate() {
        let mut story = a.to_story();
        story.id = format!("eval-{i}");
        story.version = 1;
        let age = Duration::from_secs(rng.next() % (48 * 3600));
        story.published_at = Some((now - age).into());
        category_of.insert(story.id.clone(), a.category.clone());
        store
            .apply(&EnrichedStory {
                story: Some(story),
                enrichment: Some(Enrichment {
                    topics: vec![TopicScore {
                        code: topic_of(&a.category).into(),
                        label: String::new(),
                        score: 0.9,
                    }],
                    breaking_score: 0.3,
                    ..Default::default()
                }),
                accepted_at: None,
            })
            .await?;
    }

    let readers: Vec<HashSet<&str>> = (0..READERS)
        .map(|_| {
            let first = CATEGORIES[(rng.next() % 5) as usize];
            let mut prefs = HashSet::from([first]);
            if rng.unit() < 0.5 {
                prefs.insert(CATEGORIES[(rng.next() % 5) as usize]);
            }
            prefs
        })
        .collect();

    let precision = |ids: &[String], prefs: &HashSet<&str>| {
        let hits = ids
            .iter()
            .filter(|id| prefs.contains(category_of[*id].as_str()))
            .count();
        hits as f64 / ids.len().max(1) as f64
    };
    // Each policy runs the same simulation with its own readers (same preferences).
    let mut totals = [0.0f64; 2];
    for (policy, total) in totals.iter_mut().enumerate() {
        for (r, prefs) in readers.iter().enumerate() {
            let user = format!("reader-{policy}-{r}");
            for round in 0..=ROUNDS {
                let ids: Vec<String> = if policy == 0 {
                    store.forget_first_page(&user).await?;
                    let page = feed::page(&store, &prepared, &user, 10, None)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    page.items
                        .iter()
                        .map(|i| i.story.as_ref().unwrap().id.clone())
                        .collect()
                } else {
                    // Recency only: the ten newest stories this reader has not read.
                    let read = store.reader(&user).await?.read;
                    let newest = store
                        .newest(&[(Index::Latest, 501)])
                        .await?
                        .pop()
                        .unwrap_or_default();
                    newest
                        .into_iter()
                        .filter(|id| !read.contains(id))
                        .take(10)
                        .collect()
                };
                if round == ROUNDS {
                    *total += precision(&ids, prefs);
                    break;
                }
                for id in ids {
                    let liked = prefs.contains(category_of[&id].as_str());
                    if rng.unit() < if liked { 0.7 } else { 0.05 } {
                        let read = Interaction {
                            user_id: user.clone(),
                            story_id: id,
                            kind: InteractionKind::Read as i32,
                            dwell_ms: 40_000,
                            at: Some(SystemTime::now().into()),
                        };
                        interests::apply(&store, &read).await?;
                    }
                }
            }
        }
    }
    let (ours, baseline) = (totals[0], totals[1]);
    println!(
        "offline evaluation: {READERS} simulated readers, {ROUNDS} rounds of ten stories, BBC corpus"
    );
    println!(
        "precision@10, Newsroom feed:   {:.3}",
        ours / READERS as f64
    );
    println!(
        "precision@10, recency only:    {:.3}",
        baseline / READERS as f64
    );
    pipeline.stop().await;
    Ok(())
}
