//! One alert per news event: three wires filing the same flash within milliseconds (on
//! different partitions) ring each follower's phone once; a more urgent copy of the event rings
//! it once more; a copy at the same urgency does not, and says why on `GetAlert`. And the
//! editorial controls: dry runs, alert windows, alerts sealed until an embargo ends; and the
//! feed and the phone together: an alert opened is read in the feed.

use std::time::{Duration, Instant, SystemTime};

use newsroom_e2e::phones::Phones;
use newsroom_e2e::{Pipeline, Service, bbc_story, eventually};
use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
use newsroom_proto::v1::{GetAlertRequest, SendAlertRequest, Story};

const TECH: &str = "medtop:13000000";

/// A pipeline with three readers following Science and Technology, each with a phone
/// (`<prefix>-phone-<n>`).
async fn three_followers(prefix: &str) -> (Pipeline, Phones) {
    let pipeline = Pipeline::start().await;
    let phones = Phones::default();
    let phone = phones.serve(Duration::ZERO).await;
    for n in 0..3 {
        pipeline
            .reader_with_phone(
                &format!("{prefix}-{n}"),
                &format!("{prefix}-phone-{n}"),
                TECH,
                &format!("http://{phone}/{prefix}-phone-{n}"),
            )
            .await;
    }
    (pipeline, phones)
}

/// One wire's copy of the event: the same BBC technology article under its own headline.
fn wire(source: &str, headline: &str, urgency: u32) -> Story {
    Story {
        source: source.into(),
        guid: format!("{source}-event-1"),
        headline: headline.into(),
        urgency,
        ..bbc_story("tech", 0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_wires_of_one_flash_ring_each_phone_once_and_an_escalation_once_more() {
    let (pipeline, phones) = three_followers("reader").await;
    let submit = |story: Story| pipeline.submit(story);
    let per_phone = |stories: &[String]| phones.per_device(stories);

    // Three wires, at the same instant: each story its own id, so on different partitions.
    let wires = futures::future::join_all([
        submit(wire("ap", "Chip giant unveils faster processor", 2)),
        submit(wire(
            "reuters",
            "Chipmaker launches new faster processor",
            2,
        )),
        submit(wire("desk", "New processor from chip giant is faster", 2)),
    ])
    .await;
    eventually(Duration::from_secs(60), "every phone rung", || {
        let n = per_phone(&wires);
        async move { (n.len() == 3).then_some(()) }
    })
    .await;
    // Time for any second alert of the event to show itself.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let n = per_phone(&wires);
    assert!(
        n.values().all(|c| *c == 1),
        "one alert per phone for one event: {n:?}"
    );

    // The event escalates (a flash): one more alert each; a copy at urgency 2 again: none.
    let flash = submit(wire(
        "ap-flash",
        "FLASH: chip giant's processor recalled",
        1,
    ))
    .await;
    eventually(
        Duration::from_secs(60),
        "the escalation on every phone",
        || {
            let n = per_phone(std::slice::from_ref(&flash));
            async move { (n.len() == 3).then_some(()) }
        },
    )
    .await;
    let late = submit(wire("afp", "Chip giant shows off its faster processor", 2)).await;
    let notif = NotificationServiceClient::new(pipeline.channel(Service::Notification).await);
    let status = eventually(Duration::from_secs(60), "the late copy judged", || {
        let (mut notif, late) = (notif.clone(), late.clone());
        async move {
            let s = notif
                .get_alert(GetAlertRequest { story_id: late })
                .await
                .ok()?
                .into_inner();
            (s.suppressed.get("same_event").copied().unwrap_or(0) == 3).then_some(s)
        }
    })
    .await;
    assert_eq!(status.sent, 0, "{status:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut all = wires.clone();
    all.extend([flash, late]);
    let n = per_phone(&all);
    assert!(n.values().all(|c| *c == 2), "two alerts per phone: {n:?}");
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dry_run_sends_nothing_and_returns_what_the_alert_would_do() {
    let (pipeline, phones) = three_followers("dry").await;
    // A routine story: it alerts no one by itself.
    let story = pipeline
        .submit(wire("desk", "Chip giant's processor, explained", 5))
        .await;
    let notif = NotificationServiceClient::new(pipeline.channel(Service::Notification).await);
    let request = |dry_run: bool| SendAlertRequest {
        story_id: story.clone(),
        audience: None,
        critical: false,
        dry_run,
        expires_after: None,
    };
    let dry = eventually(Duration::from_secs(60), "the story known", || {
        let (mut notif, request) = (notif.clone(), request(true));
        async move { notif.send_alert(request).await.ok() }
    })
    .await
    .into_inner();
    assert!(dry.dry_run, "{dry:?}");
    assert_eq!((dry.targeted, dry.sent), (3, 3), "{dry:?}");
    assert!(dry.suppressed.values().all(|n| *n == 0), "{dry:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(phones.hits().is_empty(), "a dry run rang a phone");
    let alerted = notif
        .clone()
        .get_alert(GetAlertRequest {
            story_id: story.clone(),
        })
        .await;
    assert_eq!(
        alerted.map(|_| ()).map_err(|s| s.code()),
        Err(tonic::Code::NotFound),
        "a dry run leaves no alert behind"
    );

    // The real alert rings the three phones; a dry run after it would send to no one.
    notif
        .clone()
        .send_alert(request(false))
        .await
        .expect("SendAlert");
    eventually(Duration::from_secs(60), "three phones rung", || {
        let n = phones.hits().len();
        async move { (n == 3).then_some(()) }
    })
    .await;
    let again = notif
        .clone()
        .send_alert(request(true))
        .await
        .expect("dry run")
        .into_inner();
    assert_eq!((again.targeted, again.sent), (0, 0), "{again:?}");
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alert_past_its_window_is_not_sent_late() {
    let (pipeline, phones) = three_followers("late").await;
    let routine = |source: &str| wire(source, "Chip giant's processor: what we know", 5);
    let (short, long) = (
        pipeline.submit(routine("short-window")).await,
        pipeline.submit(routine("long-window")).await,
    );
    let notif = NotificationServiceClient::new(pipeline.channel(Service::Notification).await);
    let alert = |story: String, window: Duration| {
        let mut notif = notif.clone();
        async move {
            notif
                .send_alert(SendAlertRequest {
                    story_id: story,
                    audience: None,
                    critical: false,
                    dry_run: false,
                    expires_after: Some(window.try_into().unwrap()),
                })
                .await
                .ok()
        }
    };
    // A window of a microsecond has closed before the fan-out's first page: nothing is sent.
    eventually(
        Duration::from_secs(60),
        "the short-window alert accepted",
        || alert(short.clone(), Duration::from_micros(1)),
    )
    .await;
    let status = eventually(Duration::from_secs(60), "the short window judged", || {
        let (mut notif, short) = (notif.clone(), short.clone());
        async move {
            let s = notif
                .get_alert(GetAlertRequest { story_id: short })
                .await
                .ok()?
                .into_inner();
            (s.suppressed.get("expired").copied().unwrap_or(0) == 3).then_some(s)
        }
    })
    .await;
    assert_eq!(status.sent, 0, "{status:?}");
    // A minute's window: sent.
    eventually(
        Duration::from_secs(60),
        "the long-window alert accepted",
        || alert(long.clone(), Duration::from_secs(60)),
    )
    .await;
    eventually(Duration::from_secs(60), "three phones rung", || {
        let n = phones.hits().len();
        async move { (n == 3).then_some(()) }
    })
    .await;
    assert!(
        phones.hits().iter().all(|(s, _)| *s == long),
        "the expired alert was sent late"
    );
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sealed_alert_fires_within_a_second_of_the_release_and_never_before() {
    let (pipeline, phones) = three_followers("sealed").await;
    // A routine story (it would not alert by itself) under embargo for a few seconds.
    let release = SystemTime::now() + Duration::from_secs(8);
    let story = Story {
        embargo_until: Some(release.into()),
        ..wire("embargo-desk", "Chip giant's results: embargoed", 5)
    };
    let id = pipeline.submit(story).await;
    // The editor prepares the alert during the embargo: sealed until the release.
    let notif = NotificationServiceClient::new(pipeline.channel(Service::Notification).await);
    let status = eventually(Duration::from_secs(5), "the sealed alert accepted", || {
        let (mut notif, id) = (notif.clone(), id.clone());
        async move {
            notif
                .send_alert(SendAlertRequest {
                    story_id: id,
                    audience: None,
                    critical: false,
                    dry_run: false,
                    expires_after: None,
                })
                .await
                .ok()
        }
    })
    .await
    .into_inner();
    let sealed_until = status
        .sealed_until
        .and_then(|t| SystemTime::try_from(t).ok())
        .expect("the answer says sealed");
    let ms = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    };
    assert_eq!(
        ms(sealed_until),
        ms(release),
        "sealed until the embargo's end"
    );
    assert!(
        SystemTime::now() < release,
        "the test was too slow to seal in time"
    );

    // Nothing before the release.
    let (now_i, now_s) = (Instant::now(), SystemTime::now());
    let wall = |at: Instant| now_s + at.duration_since(now_i);
    tokio::time::sleep(
        release
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(Duration::from_millis(100)),
    )
    .await;
    assert!(phones.hits().is_empty(), "an alert before the release");
    let alerts = notif
        .clone()
        .get_alert(GetAlertRequest {
            story_id: id.clone(),
        })
        .await;
    assert_eq!(
        alerts.map(|_| ()).unwrap_err().code(),
        tonic::Code::NotFound,
        "nothing alerted before the release"
    );

    // Every follower within a second after it.
    let hits = eventually(Duration::from_secs(10), "three phones rung", || {
        let hits = phones.hits_at();
        async move { (hits.len() >= 3).then_some(hits) }
    })
    .await;
    for (story, device, at) in &hits {
        assert_eq!(*story, id);
        let at = wall(*at);
        let after = at
            .duration_since(release)
            .unwrap_or_else(|e| panic!("{device} rung {:?} before the release", e.duration()));
        eprintln!("{device}: {} ms after the release", after.as_millis());
        assert!(
            after <= Duration::from_secs(1),
            "{device} rung {after:?} after the release"
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(phones.hits().len(), 3, "one alert per phone");
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alert_opened_on_the_phone_is_read_in_the_feed_and_a_dismissed_one_is_fed_back() {
    use newsroom_proto::Message as _;
    use newsroom_proto::v1::{
        AcknowledgeAlertRequest, AcknowledgeAlertResponse, AlertAction, Interaction,
        InteractionKind,
    };
    let (pipeline, phones) = three_followers("fed").await;
    let flash = pipeline
        .submit(wire("desk", "Chip giant unveils faster processor", 1))
        .await;
    eventually(Duration::from_secs(60), "three phones rung", || {
        let n = phones.hits().len();
        async move { (n == 3).then_some(()) }
    })
    .await;
    let in_feed = |user: &str| {
        let (pipeline, user, flash) = (&pipeline, user.to_owned(), flash.clone());
        async move {
            pipeline
                .feed(&user)
                .await
                .iter()
                .any(|i| i.story.as_ref().is_some_and(|s| s.id == flash))
        }
    };
    for user in ["fed-0", "fed-1"] {
        eventually(Duration::from_secs(30), "the flash in the feed", || {
            let shown = in_feed(user);
            async move { shown.await.then_some(()) }
        })
        .await;
    }

    // fed-0 opens the alert on the phone; fed-1 dismisses it.
    let notif = NotificationServiceClient::new(pipeline.channel(Service::Notification).await);
    let ack = |device: &str, story: &str, action: AlertAction| {
        let mut notif = notif.clone();
        let request = AcknowledgeAlertRequest {
            device_id: device.into(),
            story_id: story.into(),
            action: action as i32,
        };
        async move { notif.acknowledge_alert(request).await }
    };
    type Acked = Result<tonic::Response<AcknowledgeAlertResponse>, tonic::Status>;
    let first = |r: Acked| r.expect("AcknowledgeAlert").into_inner().first;
    assert!(first(ack("fed-phone-0", &flash, AlertAction::Opened).await));
    assert!(
        !first(ack("fed-phone-0", &flash, AlertAction::Opened).await),
        "a second report is not a first"
    );
    assert!(first(
        ack("fed-phone-1", &flash, AlertAction::Dismissed).await
    ));

    // Once recommendation has the story as read, it leaves fed-0's feed at once: the first
    // page, cached for 2 s since the check above, is dropped with it. fed-1's dismissal is no
    // "read": the story stays in that feed.
    let redis = pipeline.redis().await;
    let read = redis.key("rec:read:{fed-0}");
    eventually(Duration::from_secs(30), "the story read", || {
        let (mut conn, read, flash) = (redis.conn(), read.clone(), flash.clone());
        async move {
            use newsroom_platform::redis::redis::AsyncCommands as _;
            conn.sismember::<_, _, bool>(&read, &flash)
                .await
                .ok()?
                .then_some(())
        }
    })
    .await;
    eventually(
        Duration::from_millis(500),
        "the opened story gone from the feed",
        || {
            let shown = in_feed("fed-0");
            async move { (!shown.await).then_some(()) }
        },
    )
    .await;
    assert!(
        in_feed("fed-1").await,
        "a dismissed alert's story left the feed"
    );
    // Both reached the feed as the devices' users' interactions, once each.
    let interactions: Vec<Interaction> = pipeline
        .records(newsroom_platform::kafka::topics::INTERACTIONS)
        .await
        .into_iter()
        .filter_map(|(_, v)| Interaction::decode(v?.as_slice()).ok())
        .filter(|i| i.story_id == flash)
        .collect();
    let kinds: Vec<(String, i32)> = interactions
        .iter()
        .map(|i| (i.user_id.clone(), i.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("fed-0".to_owned(), InteractionKind::Read as i32),
            ("fed-1".to_owned(), InteractionKind::Dismiss as i32),
        ],
        "one interaction per report, for the device's user"
    );
    let status = notif
        .clone()
        .get_alert(GetAlertRequest {
            story_id: flash.clone(),
        })
        .await
        .expect("GetAlert")
        .into_inner();
    assert_eq!((status.opened, status.dismissed), (1, 1), "{status:?}");

    // What cannot be reported: an alert the device was not sent, an unknown device, no action.
    let code = |r: Acked| r.map(|_| ()).unwrap_err().code();
    assert_eq!(
        code(ack("fed-phone-2", "never-alerted", AlertAction::Opened).await),
        tonic::Code::FailedPrecondition
    );
    assert_eq!(
        code(ack("no-such-phone", &flash, AlertAction::Opened).await),
        tonic::Code::NotFound
    );
    assert_eq!(
        code(ack("fed-phone-2", &flash, AlertAction::Unspecified).await),
        tonic::Code::InvalidArgument
    );
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_developing_story_is_one_card_with_its_newest_headline_and_its_followers_hear_escalations()
 {
    use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
    use newsroom_proto::v1::{
        Channel as DeviceChannel, Device, FeedItem, FollowRequest, FollowTarget,
        RegisterDeviceRequest, TargetKind,
    };
    let (pipeline, phones) = three_followers("dev").await;
    // Three wires file one event, a minute apart by their own clocks; routine, so no alert.
    let at =
        |minutes_ago: u64| Some((SystemTime::now() - Duration::from_secs(60 * minutes_ago)).into());
    let mut filed = Vec::new();
    for (source, headline, minutes_ago) in [
        ("ap", "Chip giant unveils faster processor", 3),
        ("reuters", "Chipmaker launches new faster processor", 2),
        ("desk", "New processor is faster, chip giant says", 1),
    ] {
        let story = Story {
            published_at: at(minutes_ago),
            ..wire(source, headline, 4)
        };
        filed.push(pipeline.submit(story).await);
    }
    // The event's cards in a feed: items showing any story of the event.
    let event_cards = |items: Vec<FeedItem>, of: Vec<String>| -> Vec<FeedItem> {
        items
            .into_iter()
            .filter(|i| i.story.as_ref().is_some_and(|s| of.contains(&s.id)))
            .collect()
    };
    let card = eventually(Duration::from_secs(30), "one card of three stories", || {
        let (items, of) = (pipeline.feed("dev-0"), filed.clone());
        async move {
            let cards = event_cards(items.await, of);
            (cards.len() == 1 && cards[0].developing.as_ref()?.stories == 3)
                .then(|| cards[0].clone())
        }
    })
    .await;
    let developing = card.developing.clone().expect("a developing story");
    assert_eq!(developing.sources, 3, "{developing:?}");
    let shown = card.story.expect("a story");
    assert_eq!(
        (shown.id.as_str(), shown.headline.as_str()),
        (
            filed[2].as_str(),
            "New processor is faster, chip giant says"
        ),
        "the card shows the newest story"
    );

    // A reader following nothing but the developing story, with a phone.
    let cluster = developing.cluster_id.clone();
    RecommendationServiceClient::new(pipeline.channel(Service::Recommendation).await)
        .follow(FollowRequest {
            user_id: "watcher".into(),
            target: Some(FollowTarget {
                kind: TargetKind::Cluster as i32,
                value: cluster.clone(),
            }),
        })
        .await
        .expect("Follow the developing story");
    let phone = phones.serve(Duration::ZERO).await;
    NotificationServiceClient::new(pipeline.channel(Service::Notification).await)
        .register_device(RegisterDeviceRequest {
            device: Some(Device {
                device_id: "watcher-phone".into(),
                user_id: "watcher".into(),
                channel: DeviceChannel::Webhook as i32,
                address: format!("http://{phone}/watcher-phone"),
                ..Default::default()
            }),
        })
        .await
        .expect("RegisterDevice");
    pipeline
        .wait_in_audience_of("cluster", &cluster, "watcher")
        .await;
    let cards = event_cards(pipeline.feed("watcher").await, filed.clone());
    assert_eq!(cards.len(), 1, "the followed developing story in the feed");
    assert!(
        cards[0]
            .reasons
            .contains(&"You follow this developing story".to_owned()),
        "{:?}",
        cards[0].reasons
    );

    // A routine update reaches the feed, not the phone; a flash of the event rings it.
    let update = pipeline
        .submit(Story {
            published_at: at(0),
            ..wire("afp", "Chip giant's faster processor: what we know", 4)
        })
        .await;
    filed.push(update.clone());
    eventually(Duration::from_secs(30), "the update on the card", || {
        let (items, of, update) = (pipeline.feed("watcher"), filed.clone(), update.clone());
        async move {
            let cards = event_cards(items.await, of);
            let c = cards.first()?;
            (c.story.as_ref()?.id == update && c.developing.as_ref()?.sources == 4).then_some(())
        }
    })
    .await;
    let flash = pipeline
        .submit(wire(
            "ap-flash",
            "FLASH: Chip giant's processor recalled",
            1,
        ))
        .await;
    eventually(Duration::from_secs(60), "the flash on every phone", || {
        let n = phones.per_device(std::slice::from_ref(&flash)).len();
        async move { (n == 4).then_some(()) }
    })
    .await;
    let watcher: Vec<String> = phones
        .hits()
        .into_iter()
        .filter(|(_, d)| d == "watcher-phone")
        .map(|(s, _)| s)
        .collect();
    assert_eq!(watcher, [flash], "the watcher heard the escalation only");
    pipeline.stop().await;
}
