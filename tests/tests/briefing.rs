//! Daily briefings: two readers who follow technology, one in Tokyo and one in New York, each
//! get one briefing at the local time they chose — in their own time zone, a minute apart —
//! with the stories of their follows and without the flash their phones were already rung for.

use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, DurationRound as _, Utc};
use newsroom_e2e::phones::Phones;
use newsroom_e2e::{Pipeline, Service, bbc_story, eventually};
use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
use newsroom_proto::v1::{
    Channel as DeviceChannel, Device, Preferences, RegisterDeviceRequest, Story,
};

const TECH: &str = "medtop:13000000";

/// The `n`th BBC technology article as a story: a news event of its own.
fn tech(n: usize, urgency: u32) -> Story {
    Story {
        source: "desk".into(),
        guid: format!("briefing-{n}"),
        urgency,
        ..bbc_story("tech", n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_briefing_arrives_at_each_readers_local_time_in_two_time_zones() {
    let pipeline = Pipeline::start().await;
    let phones = Phones::default();
    let phone = phones.serve(Duration::ZERO).await;
    let readers = [
        ("tokyo", chrono_tz::Asia::Tokyo),
        ("newyork", chrono_tz::America::New_York),
    ];
    for (user, _) in &readers {
        pipeline
            .reader_with_phone(
                user,
                &format!("{user}-phone"),
                TECH,
                &format!("http://{phone}/{user}-phone"),
            )
            .await;
    }
    // Three routine technology stories, and a flash that rings both phones.
    let mut routine = Vec::new();
    for n in 1..=3 {
        routine.push(pipeline.submit(tech(n, 4)).await);
    }
    let flash = pipeline.submit(tech(4, 1)).await;
    eventually(Duration::from_secs(60), "the flash on both phones", || {
        let n = phones.per_device(std::slice::from_ref(&flash)).len();
        async move { (n == 2).then_some(()) }
    })
    .await;
    for id in &routine {
        pipeline.wait_story_in_notification(id).await;
    }

    // Each reader's briefing time, in their own zone: the Tokyo reader's a minute that starts
    // at least 20 s from now, the New York reader's the minute after.
    let now = Utc::now();
    let minute = |ahead: i64| {
        (now + chrono::Duration::seconds(ahead))
            .duration_trunc(chrono::Duration::minutes(1))
            .expect("a minute")
    };
    let dues: Vec<DateTime<Utc>> = vec![minute(80), minute(140)];
    let mut notif = NotificationServiceClient::new(pipeline.channel(Service::Notification).await);
    for ((user, tz), due) in readers.iter().zip(&dues) {
        let local = due.with_timezone(tz).format("%H:%M").to_string();
        notif
            .register_device(RegisterDeviceRequest {
                device: Some(Device {
                    device_id: format!("{user}-phone"),
                    user_id: (*user).into(),
                    channel: DeviceChannel::Webhook as i32,
                    address: format!("http://{phone}/{user}-phone"),
                    timezone: tz.name().into(),
                    preferences: Some(Preferences {
                        breaking_alerts: true,
                        briefing_time: local.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            })
            .await
            .expect("RegisterDevice with a briefing time");
        eprintln!("{user}: briefing at {local} {} = {due}", tz.name());
    }

    // Each briefing arrives at its reader's local time, within the scheduler's tick.
    let (i0, s0) = (Instant::now(), SystemTime::now());
    let wall = |at: Instant| DateTime::<Utc>::from(s0 + at.duration_since(i0));
    for ((user, tz), due) in readers.iter().zip(&dues) {
        let device = format!("{user}-phone");
        let at = eventually(Duration::from_secs(200), "the briefing", || {
            let at = phones
                .hits_at()
                .into_iter()
                .find(|(s, d, _)| s.starts_with("briefing:") && *d == device)
                .map(|(_, _, at)| wall(at));
            async move { at }
        })
        .await;
        let late = at - *due;
        eprintln!(
            "{user}: briefed at {} local, {} ms after it was due",
            at.with_timezone(tz).format("%H:%M:%S"),
            late.num_milliseconds()
        );
        assert!(
            late >= chrono::Duration::zero() && late <= chrono::Duration::seconds(5),
            "{user}'s briefing came {late} after its local time"
        );
        let body = phones
            .bodies_of(&device)
            .into_iter()
            .find(|b| {
                b["story_id"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("briefing:"))
            })
            .expect("the briefing's body");
        let mut stories: Vec<String> = body["briefing"]
            .as_array()
            .expect("briefing stories")
            .iter()
            .map(|i| i["story_id"].as_str().unwrap_or_default().to_owned())
            .collect();
        stories.sort();
        let mut want = routine.clone();
        want.sort();
        assert_eq!(
            stories, want,
            "{user}: the routine stories, not the flash they were rung for"
        );
        let local_day = at.with_timezone(tz).format("%Y-%m-%d").to_string();
        assert_eq!(body["story_id"], format!("briefing:{local_day}"));
    }
    // One each.
    tokio::time::sleep(Duration::from_secs(12)).await;
    for (user, _) in &readers {
        let n = phones
            .hits()
            .iter()
            .filter(|(s, d)| s.starts_with("briefing:") && *d == format!("{user}-phone"))
            .count();
        assert_eq!(n, 1, "{user}: one briefing");
    }
    pipeline.stop().await;
}
