//! myNEWS and the console in a real browser: `tests/browser/mynews.mjs` drives Debian's headless
//! Chromium (playwright-core) against web and the four services started here, on the real
//! broker and Redis. The script asks for what the stack must do at each step (`WAIT <step>`);
//! this test does it and answers (`OK <answer>`):
//!
//! - a reader signs in, reaches the skip link with the keyboard, follows a topic from a chip,
//!   sees a new story arrive with its reason and a flash alert appear live; sets quiet hours
//!   around now and the next (non-critical) alert is held, both on the page and in
//!   notification's counts;
//! - an editor previews an alert above the approval threshold, a second editor approves it, and
//!   the counts reach done; on the story's desk (its versions, each with a trace link) the
//!   editor withdraws the alert, and the retraction reaches both phones;
//! - axe-core finds no WCAG 2 A/AA violation on myNEWS, preferences, the console or the desk, and the run
//!   leaves screenshots of myNEWS and the console in `docs/screenshots/` (the README shows them).
//!
//! Needs `/usr/bin/chromium` (Debian's `chromium`) and `npm ci` in `tests/browser` (`.ci/run`
//! and `just test` do both); it fails, rather than skips, when either is missing.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use newsroom_e2e::{Pipeline, Service, eventually};
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use newsroom_proto::v1::{GetAlertRequest, GetStoryRequest, Story, SubmitStoryRequest};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

const TECH: &str = "medtop:13000000";

fn story(guid: &str, headline: &str, body: &str, urgency: u32) -> Story {
    Story {
        source: "wire".into(),
        guid: guid.into(),
        headline: headline.into(),
        body_html: format!("<p>{body}</p>"),
        urgency,
        ..Default::default()
    }
}

async fn submit(pipeline: &Pipeline, s: Story) -> String {
    let id = IngestServiceClient::new(pipeline.channel(Service::Ingest).await)
        .submit_story(SubmitStoryRequest {
            story: Some(s),
            idempotency_key: String::new(),
        })
        .await
        .expect("SubmitStory")
        .into_inner()
        .story_id;
    let rec = RecommendationServiceClient::new(pipeline.channel(Service::Recommendation).await);
    eventually(
        Duration::from_secs(60),
        "the story enriched and indexed",
        || {
            let (mut rec, id) = (rec.clone(), id.clone());
            async move {
                rec.get_story(GetStoryRequest { story_id: id }).await.ok()?;
                Some(())
            }
        },
    )
    .await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_and_two_editors_in_headless_chromium() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci` in {} first (`just test` does)",
        dir.display()
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install chromium (.ci/run does)"
    );
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let pipeline = Pipeline::start().await;
    let (web, _stop) = pipeline
        .start_web(&[("NEWSROOM_WEB_APPROVAL_AUDIENCE", "1")])
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (phone, received, _sink) = newsroom_cli::sink::serve(listener, false).await;

    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("mynews.mjs"))
        .env("WEB_URL", format!("http://{web}"))
        .env("SCREENSHOTS_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let mut to_browser = child.stdin.take().unwrap();
    let mut from_browser = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut done = false;
    let mut n = 0;
    let mut console_story = String::new();
    let run = async {
        while let Some(line) = from_browser.next_line().await.unwrap() {
            eprintln!("browser: {line}");
            if line == "DONE" {
                done = true;
                break;
            }
            let Some(step) = line.strip_prefix("WAIT ") else {
                continue;
            };
            n += 1;
            let answer = match step {
                "seeded" => {
                    let h = "Chip makers unveil a phone processor that halves power use";
                    submit(&pipeline, story("br-seed", h, "Engineers at a technology conference showed a new mobile phone processor and software that use half the power.", 3)).await;
                    h.to_owned()
                }
                "followed" => {
                    let h = "New software update brings faster browsing to older smartphones";
                    submit(&pipeline, story("br-next", h, "A software update for mobile phones makes web browsing faster on older devices, the technology company said.", 3)).await;
                    h.to_owned()
                }
                "live" => {
                    // Notification learns the follow from the profiles topic.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let h = "FLASH: Global mobile network outage cuts phones and internet";
                    submit(&pipeline, story("br-flash-1", h, "Mobile data networks and internet services failed in several countries after a software fault at a network equipment maker, engineers said.", 1)).await;
                    h.to_owned()
                }
                "quiet" => {
                    let h = "FLASH: Second software fault takes down smartphone apps";
                    let id = submit(&pipeline, story("br-flash-2", h, "Smartphone apps and mobile software services failed again after a second software fault, the technology company said.", 1)).await;
                    let notif = NotificationServiceClient::new(
                        pipeline.channel(Service::Notification).await,
                    );
                    let held = eventually(
                        Duration::from_secs(60),
                        "the flash held by quiet hours",
                        || {
                            let (mut notif, id) = (notif.clone(), id.clone());
                            async move {
                                let s = notif
                                    .get_alert(GetAlertRequest { story_id: id })
                                    .await
                                    .ok()?
                                    .into_inner();
                                s.suppressed.get("quiet_hours").copied().filter(|n| *n >= 1)
                            }
                        },
                    )
                    .await;
                    eprintln!("notification held {held} device(s) for quiet hours");
                    h.to_owned()
                }
                "console" => {
                    // Two readers' phones: an audience above the threshold of one.
                    for (user, device) in [("kim", "kim-phone"), ("lee", "lee-phone")] {
                        pipeline
                            .reader_with_phone(
                                user,
                                device,
                                TECH,
                                &format!("http://{phone}/alerts"),
                            )
                            .await;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let id = submit(&pipeline, story("br-console", "Regulators open an inquiry into phone makers' software updates", "Regulators said they would examine how technology companies update software on older mobile phones.", 3)).await;
                    console_story = id.clone();
                    id
                }
                "retracted" => {
                    // The editor withdrew the alert: each phone it reached gets the retraction.
                    let phones = eventually(
                        Duration::from_secs(60),
                        "the retraction on both phones",
                        || {
                            let all = received.all();
                            let id = console_story.clone();
                            async move {
                                let n = all
                                    .iter()
                                    .filter(|a| {
                                        a["story_id"] == id.as_str() && a["retracted"] == true
                                    })
                                    .count();
                                (n >= 2).then_some(n)
                            }
                        },
                    )
                    .await;
                    phones.to_string()
                }
                other => panic!("the browser script asked for an unknown step {other}"),
            };
            to_browser
                .write_all(format!("OK {answer}\n").as_bytes())
                .await
                .unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("the browser run within 10 minutes");
    drop(to_browser);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the browser script exits after DONE")
        .unwrap();
    assert!(status.success(), "the browser script failed: {status}");
    assert!(done && n == 6, "the script ran to its end ({n} steps)");
    for shot in ["mynews.png", "console.png"] {
        let len = std::fs::metadata(shots.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 10_000, "{shot}: a screenshot, {len} bytes");
    }
    pipeline.stop().await;
}
