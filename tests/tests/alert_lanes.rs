//! A long fan-out holds nothing behind it: while a flash rings 60 slow phones (15 s on a
//! channel limited to 4 sends at once), the next flash of the same partition and an editor's
//! alert each reach their reader within seconds, and every phone still gets each alert once.

use std::collections::HashMap;
use std::time::Duration;

use newsroom_e2e::phones::Phones;
use newsroom_e2e::{Pipeline, Service, data_file, eventually};
use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
use newsroom_proto::v1::{Audience, SendAlertRequest, Story, audience};

const TECH: &str = "medtop:13000000";
const POLITICS: &str = "medtop:11000000";

/// A BBC article of `category` as a story.
fn article(category: &str, guid: &str, urgency: u32) -> Story {
    let a = data_file("bbc-news.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<newsroom_cli::bbc::BbcArticle>(l).ok())
        .find(|a| a.category == category)
        .expect("an article of the category");
    Story {
        source: "wire".into(),
        guid: guid.into(),
        urgency,
        ..a.to_story()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_fan_out_holds_neither_the_next_flash_of_its_partition_nor_an_editors_alert() {
    // One partition: every story shares the long fan-out's partition.
    let pipeline = Pipeline::start_with(
        &Service::ALL,
        &[
            ("NEWSROOM_TOPIC_PARTITIONS", "1"),
            ("NEWSROOM_FANOUT_CONCURRENCY", "4"),
        ],
    )
    .await;
    // Slow phones answer after a second; the politics reader's at once.
    let (slow, fast) = (Phones::default(), Phones::default());
    let (slow_addr, fast_addr) = (
        slow.serve(Duration::from_secs(1)).await,
        fast.serve(Duration::ZERO).await,
    );
    for n in 0..60 {
        pipeline
            .reader_with_phone(
                &format!("tech-{n}"),
                &format!("slow-{n}"),
                TECH,
                &format!("http://{slow_addr}/slow-{n}"),
            )
            .await;
    }
    pipeline
        .reader_with_phone(
            "politics",
            "fast",
            POLITICS,
            &format!("http://{fast_addr}/fast"),
        )
        .await;
    let submit = |story: Story| pipeline.submit(story);

    // The long fan-out: a tech flash to 60 slow phones.
    let long = submit(article("tech", "lanes-long", 1)).await;
    let count = |story: &str| slow.hits().iter().filter(|(s, _)| s == story).count();
    eventually(
        Duration::from_secs(60),
        "the long fan-out under way",
        || {
            let n = count(&long);
            async move { (n > 0).then_some(()) }
        },
    )
    .await;

    // The next flash on the same partition, and an editor's alert for a routine story.
    let flash = submit(article("politics", "lanes-flash", 1)).await;
    let routine = submit(article("politics", "lanes-routine", 5)).await;
    let notif = NotificationServiceClient::new(pipeline.channel(Service::Notification).await);
    // The editor waits until the routine story is known to notification.
    eventually(
        Duration::from_secs(30),
        "the editor's alert accepted",
        || {
            let (mut notif, routine) = (notif.clone(), routine.clone());
            async move {
                notif
                    .send_alert(SendAlertRequest {
                        story_id: routine,
                        audience: Some(Audience {
                            target: Some(audience::Target::Followers(true)),
                        }),
                        critical: false,
                        dry_run: false,
                        expires_after: None,
                    })
                    .await
                    .ok()
            }
        },
    )
    .await;
    let on_fast_phone = |story: String| {
        let at = fast
            .hits_at()
            .into_iter()
            .find(|(s, _, _)| *s == story)
            .map(|(_, _, at)| at);
        async move { at }
    };
    let flash_at = eventually(Duration::from_secs(60), "the second flash", || {
        on_fast_phone(flash.clone())
    })
    .await;
    let editor_at = eventually(Duration::from_secs(60), "the editor's alert", || {
        on_fast_phone(routine.clone())
    })
    .await;
    // Neither waited for the long fan-out: it was still ringing slow phones after both.
    let long_done = eventually(Duration::from_secs(90), "the long fan-out done", || {
        let n = count(&long);
        let last = slow
            .hits_at()
            .into_iter()
            .filter(|(s, _, _)| *s == long)
            .map(|(_, _, at)| at)
            .max();
        async move { (n >= 60).then_some(last).flatten() }
    })
    .await;
    for (what, at) in [("second flash", flash_at), ("editor's alert", editor_at)] {
        assert!(
            long_done.duration_since(at) > Duration::from_secs(5),
            "the {what} arrived only {:?} before the long fan-out ended: it waited for it",
            long_done.duration_since(at)
        );
    }
    // And each phone got each alert once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per: HashMap<(String, String), usize> = HashMap::new();
    for hit in slow.hits().into_iter().chain(fast.hits()) {
        *per.entry(hit).or_default() += 1;
    }
    assert!(per.values().all(|n| *n == 1), "duplicates: {per:?}");
    assert_eq!(count(&long), 60);
    pipeline.stop().await;
}
