//! A long fan-out holds nothing behind it: while a flash rings 60 slow phones (15 s on a
//! channel limited to 4 sends at once), the next flash of the same partition and an editor's
//! alert each reach their reader within seconds, and every phone still gets each alert once.
//! And the lanes: a flash during an editor's routine alert to 100,000 devices is sent within
//! its normal latency.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;

use newsroom_e2e::phones::Phones;
use newsroom_e2e::{Pipeline, Service, bbc_story, eventually};
use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
use newsroom_proto::v1::{
    Audience, Channel as DeviceChannel, Device, RegisterDeviceRequest, SendAlertRequest, Story,
    audience,
};

const TECH: &str = "medtop:13000000";
const POLITICS: &str = "medtop:11000000";

/// A BBC article of `category` as a story.
fn article(category: &str, guid: &str, urgency: u32) -> Story {
    nth_article(category, 0, guid, urgency)
}

/// The `n`th BBC article of `category` as a story: different news events for different `n`.
fn nth_article(category: &str, n: usize, guid: &str, urgency: u32) -> Story {
    Story {
        source: "wire".into(),
        guid: guid.into(),
        urgency,
        ..bbc_story(category, n)
    }
}

/// Sends an editor's alert of `story` to `target`, again until notification knows the story
/// and accepts it.
async fn alert_accepted(
    notif: &NotificationServiceClient<tonic::transport::Channel>,
    story: &str,
    target: audience::Target,
    what: &str,
) {
    eventually(Duration::from_secs(30), what, || {
        let (mut notif, story, target) = (notif.clone(), story.to_owned(), target.clone());
        async move {
            notif
                .send_alert(SendAlertRequest {
                    story_id: story,
                    audience: Some(Audience {
                        target: Some(target),
                    }),
                    critical: false,
                    dry_run: false,
                    expires_after: None,
                })
                .await
                .ok()
        }
    })
    .await;
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
    alert_accepted(
        &notif,
        &routine,
        audience::Target::Followers(true),
        "the editor's alert accepted",
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

/// A flash during an editor's routine alert to everyone — `LANES_DEVICES` (100,000) webhook
/// devices — is first sent within its normal latency: the routine alert runs in its own lane
/// (`notifications.alerts`, its own consumer group, at most part of each channel), and every
/// device still gets it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flash_during_a_routine_fan_out_to_everyone_is_sent_within_its_normal_latency() {
    let devices: usize = std::env::var("LANES_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let pipeline =
        Pipeline::start_with(&Service::ALL, &[("NEWSROOM_FANOUT_CONCURRENCY", "32")]).await;
    let (bulk, fast) = (Phones::default(), Phones::default());
    let (bulk_addr, fast_addr) = (
        bulk.serve(Duration::ZERO).await,
        fast.serve(Duration::ZERO).await,
    );
    pipeline
        .reader_with_phone(
            "politics",
            "fast",
            POLITICS,
            &format!("http://{fast_addr}/fast"),
        )
        .await;
    // Submit answered → first alert on the reader's phone; each flash its own news event.
    let flash_latency = |n: usize| {
        let (pipeline, fast) = (&pipeline, &fast);
        async move {
            let guid = format!("lanes-flash-{n}");
            let submitted = Instant::now();
            let id = pipeline.submit(nth_article("politics", n, &guid, 1)).await;
            let at = eventually(Duration::from_secs(30), "the flash on the phone", || {
                let at = fast.first_at(&id);
                async move { at }
            })
            .await;
            at.duration_since(submitted)
        }
    };
    // The normal latency: the best of three flashes with nothing else running.
    let mut normal = Duration::MAX;
    for i in 0..3 {
        normal = normal.min(flash_latency(i).await);
    }

    // The audience of the routine alert, registered as apps do.
    let notif = NotificationServiceClient::new(pipeline.channel(Service::Notification).await);
    let registering = Instant::now();
    futures::stream::iter(0..devices)
        .map(|n| {
            let mut notif = notif.clone();
            async move {
                notif
                    .register_device(RegisterDeviceRequest {
                        device: Some(Device {
                            device_id: format!("bulk-{n}"),
                            user_id: format!("bulk-{n}"),
                            channel: DeviceChannel::Webhook as i32,
                            address: format!("http://{bulk_addr}/bulk-{n}"),
                            ..Default::default()
                        }),
                    })
                    .await
                    .expect("RegisterDevice")
            }
        })
        .buffer_unordered(64)
        .for_each(|_| async {})
        .await;
    eprintln!(
        "{devices} devices registered in {:.1} s",
        registering.elapsed().as_secs_f64()
    );

    // An editor's alert of a routine story to everyone.
    let digest = pipeline.submit(article("tech", "lanes-digest", 5)).await;
    alert_accepted(
        &notif,
        &digest,
        audience::Target::Everyone(true),
        "the routine alert accepted",
    )
    .await;
    eventually(
        Duration::from_secs(120),
        "the routine fan-out under way",
        || {
            let n = bulk.count();
            async move { (n > devices / 20).then_some(()) }
        },
    )
    .await;

    // The flash, while the routine alert is being sent.
    let loaded = flash_latency(3).await;
    let routine_done = bulk.count();
    eprintln!(
        "flash submit → first alert: {:.0} ms alone, {:.0} ms during the routine fan-out \
         ({routine_done} of {devices} routine sends done then)",
        normal.as_secs_f64() * 1000.0,
        loaded.as_secs_f64() * 1000.0
    );
    assert!(
        routine_done < devices,
        "the routine fan-out had ended before the flash was sent: nothing was shown"
    );
    assert!(
        loaded <= normal * 3 + Duration::from_secs(1),
        "the flash took {loaded:?} during the routine fan-out, {normal:?} alone: it waited"
    );

    // And the routine alert still reached every device once.
    eventually(Duration::from_secs(600), "the routine fan-out done", || {
        let n = bulk.count();
        async move { (n >= devices).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per = bulk.per_device(&[digest]);
    assert_eq!(per.len(), devices, "devices the routine alert missed");
    assert!(per.values().all(|n| *n == 1), "a device alerted twice");
    pipeline.stop().await;
}
