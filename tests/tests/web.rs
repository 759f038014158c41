//! The web face against the real services (and so the real broker and Redis): a reader signs
//! in, follows a topic from a chip, sees the story in myNEWS with its reason, opens the story
//! page, gets a flash alert live over server-sent events; the JSON API answers with the same
//! stories and names the field of every bad request; an editor previews and sends an alert and
//! follows it to done, corrects its headline on the phone and kills a story; a large alert
//! needs a second editor.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use newsroom_e2e::{Pipeline, Service, eventually};
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::{Story, SubmitStoryRequest};
use reqwest::StatusCode;
use reqwest::redirect::Policy;

const TECH: &str = "medtop:13000000";

/// A browser-like client of one user: follows no redirect, keeps the session cookie.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Browser {
    fn new(addr: SocketAddr) -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: format!("http://{addr}"),
            cookie: String::new(),
        }
    }

    async fn sign_in(&mut self, user: &str, editor: bool) {
        let mut form = vec![("user", user)];
        if editor {
            form.push(("editor", "on"));
        }
        let r = self
            .http
            .post(format!("{}/signin/dev", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(urlencoded(&form))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let set = r.headers()["set-cookie"].to_str().unwrap();
        assert!(set.contains("HttpOnly"), "{set}");
        self.cookie = set.split(';').next().unwrap().to_owned();
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        htmx: bool,
    ) -> (StatusCode, String) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(urlencoded(form));
        if htmx {
            req = req.header("hx-request", "true");
        }
        let r = req.send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }
}

fn urlencoded(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

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
    IngestServiceClient::new(pipeline.channel(Service::Ingest).await)
        .submit_story(SubmitStoryRequest {
            story: Some(s),
            idempotency_key: String::new(),
        })
        .await
        .expect("SubmitStory")
        .into_inner()
        .story_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_follows_from_a_chip_reads_the_story_and_gets_a_flash_live() {
    let pipeline = Pipeline::start().await;
    let (addr, _web) = pipeline.start_web(&[]).await;
    let mut alice = Browser::new(addr);

    // Signed out: the pages send to the sign-in, the API says 401 in JSON.
    let (status, _) = alice.get("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, body) = alice.json(reqwest::Method::GET, "/api/v1/feed", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "UNAUTHENTICATED");

    alice.sign_in("alice", false).await;
    let (status, page) = alice.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Your news, alice"), "{page}");

    // Follow science and technology from a chip (as htmx sends it): the chip comes back pressed.
    let (status, chip) = alice
        .post_form(
            "/follow",
            &[
                ("kind", "topic"),
                ("value", TECH),
                ("label", "science and technology"),
            ],
            true,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(chip.contains("aria-pressed=\"true\""), "{chip}");
    let (_, follows) = alice
        .json(reqwest::Method::GET, "/api/v1/follows", None)
        .await;
    assert_eq!(follows["follows"][0]["value"], TECH);

    let id = submit(
        &pipeline,
        story(
            "web-chip-1",
            "New smartphone chip doubles battery life, engineers say",
            "A new processor for mobile phones uses half the power of its predecessor, \
             its designers said at a technology conference, with software and devices due next year.",
            3,
        ),
    )
    .await;
    let page = eventually(Duration::from_secs(60), "the story in myNEWS", || {
        let alice = &alice;
        async move {
            let (_, page) = alice.get("/").await;
            page.contains("New smartphone chip").then_some(page)
        }
    })
    .await;
    assert!(
        page.contains("You follow Science and technology"),
        "the reason shows"
    );

    // The JSON API has the same story, with its topics; bad input names its field.
    let (status, feed) = alice
        .json(reqwest::Method::GET, "/api/v1/feed?limit=5", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let item = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .expect("in the API feed");
    assert!(
        item["topics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["code"] == TECH)
    );
    let (status, e) = alice
        .json(reqwest::Method::GET, "/api/v1/feed?limit=0", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["field"], "limit");
    let (status, e) = alice
        .json(reqwest::Method::GET, "/api/v1/feed?colour=red", None)
        .await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("colour"))
    );
    let (status, e) = alice
        .json(
            reqwest::Method::POST,
            "/api/v1/follows",
            Some(serde_json::json!({"kind": "galaxy", "value": "x"})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("kind"))
    );
    let (status, e) = alice
        .json(
            reqwest::Method::POST,
            "/api/v1/interactions",
            Some(serde_json::json!({"kind": "read"})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("story_id"))
    );
    let (status, _) = alice
        .json(reqwest::Method::GET, "/api/v1/stories/no-such-story", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, doc) = alice
        .json(reqwest::Method::GET, "/api/openapi.json", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["paths"]["/api/v1/feed"]["get"].is_object(), "{doc}");

    // The story page: summary, entities as chips, and reading it takes it out of the feed.
    let (status, page) = alice.get(&format!("/story/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("New smartphone chip") && page.contains("Related"),
        "{page}"
    );
    eventually(
        Duration::from_secs(30),
        "the read story out of the feed",
        || {
            let (alice, id) = (&alice, id.clone());
            async move {
                let (_, feed) = alice.json(reqwest::Method::GET, "/api/v1/feed", None).await;
                (!feed["items"]
                    .as_array()?
                    .iter()
                    .any(|i| i["id"] == id.as_str()))
                .then_some(())
            }
        },
    )
    .await;

    // Live: the page's event stream gets a flash on the followed topic.
    let mut events = alice
        .http
        .get(format!("{}/events?tz=Europe/London", alice.base))
        .header("cookie", &alice.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // Notification learns the follow from the profiles topic: give it a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    submit(
        &pipeline,
        story(
            "web-flash-1",
            "FLASH: Worldwide mobile network outage hits phones and apps",
            "Mobile data networks and smartphone apps failed across several countries after a \
             software fault at a network equipment maker, engineers said.",
            1,
        ),
    )
    .await;
    let got = tokio::time::timeout(Duration::from_secs(60), async {
        let mut seen = String::new();
        while let Some(chunk) = events.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: alert") && seen.contains("Worldwide mobile network outage") {
                return seen;
            }
        }
        seen
    })
    .await
    .expect("a live alert within 60 s");
    assert!(got.contains("\"urgency\":1"), "{got}");

    // Preferences write through to notification and read back.
    let (status, prefs) = alice
        .json(reqwest::Method::PUT, "/api/v1/preferences", Some(serde_json::json!({"quiet_start": "22:00", "quiet_end": "07:00", "max_alerts_per_day": 5})))
        .await;
    assert_eq!(status, StatusCode::OK, "{prefs}");
    assert_eq!(prefs["quiet_start"], "22:00");
    assert_eq!(prefs["max_alerts_per_day"], 5);
    assert_eq!(
        prefs["timezone"], "Europe/London",
        "the zone the page's stream gave"
    );
    let (status, e) = alice
        .json(
            reqwest::Method::PUT,
            "/api/v1/preferences",
            Some(serde_json::json!({"quiet_start": "25:99"})),
        )
        .await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("quiet_start"))
    );
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_previews_sends_and_follows_an_alert_and_a_large_one_needs_a_second_editor() {
    let pipeline = Pipeline::start().await;
    // Audiences above one device need a second editor in this test.
    let (addr, _web) = pipeline
        .start_web(&[("NEWSROOM_WEB_APPROVAL_AUDIENCE", "1")])
        .await;
    let mut reader = Browser::new(addr);
    reader.sign_in("rita", false).await;
    let (status, _) = reader.get("/console").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the console is for editors");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (phone, received, _sink) = newsroom_cli::sink::serve(listener, false).await;
    let phone_url = format!("http://{phone}/alerts");
    let mut ed = Browser::new(addr);
    ed.sign_in("ed", true).await;
    let id = submit(
        &pipeline,
        story(
            "web-ed-1",
            "Parliament passes the budget after a late vote",
            "Members of parliament approved the government's budget late on Tuesday.",
            3,
        ),
    )
    .await;
    let console = eventually(Duration::from_secs(60), "the story on the wire", || {
        let (ed, id) = (&ed, id.clone());
        async move {
            let (_, page) = ed.get("/console").await;
            page.contains(&id).then_some(page)
        }
    })
    .await;
    assert!(
        console.contains("Enrichment pipeline") && console.contains("embedding"),
        "{console}"
    );
    // Each stage's work: the story just enriched counts as an attempt of the language stage.
    let language_row = console
        .split("<tr>")
        .find(|r| r.starts_with("<td>language</td>"))
        .unwrap_or_else(|| panic!("the language stage's row: {console}"));
    let cells: Vec<&str> = language_row
        .split("<td>")
        .skip(1)
        .map(|c| c.split("</td>").next().unwrap_or_default())
        .collect();
    let attempts: u64 = cells[6].parse().expect("attempts");
    assert!(attempts >= 1, "{language_row}");
    assert!(
        console.contains("reloads: 0 applied, 0 rejected"),
        "{console}"
    );

    // One follower's phone: a preview counts it, sending reaches it, the status reaches done.
    pipeline
        .reader_with_phone("rita", "rita-phone", "medtop:11000000", &phone_url)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let form = [
        ("story_id", id.as_str()),
        ("audience", "everyone"),
        ("segment", ""),
    ];
    let (status, preview) = ed.post_form("/console/alerts/preview", &form, true).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert!(
        preview.contains("Send alert") && preview.contains("devices would be alerted"),
        "{preview}"
    );
    assert!(
        preview.contains(r#"<span class="channel">webhook 1</span>"#),
        "the audience by channel: {preview}"
    );
    let (status, sent) = ed
        .post_form(
            "/console/alerts/send",
            &[
                ("story_id", id.as_str()),
                ("audience", "everyone"),
                ("segment", ""),
                ("approval", ""),
            ],
            true,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    eventually(Duration::from_secs(60), "the alert done", || {
        let (ed, id) = (&ed, id.clone());
        async move {
            let (_, s) = ed.get(&format!("/console/alerts/{id}/status")).await;
            s.contains("Alert done").then_some(())
        }
    })
    .await;

    // The alert reached the phone; a corrected headline replaces it there (same collapse id).
    eventually(Duration::from_secs(30), "the alert on the phone", || {
        let r = received.contains_story(&id);
        async move { r.then_some(()) }
    })
    .await;
    let (status, _) = ed
        .post_form(
            &format!("/console/stories/{id}/correct"),
            &[("headline", "Parliament passes the budget by three votes")],
            false,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let correction = eventually(
        Duration::from_secs(60),
        "the correction on the phone",
        || {
            let all = received.all();
            async move {
                all.into_iter().find(|a| {
                    a["correction"] == true
                        && a["headline"]
                            .as_str()
                            .is_some_and(|h| h.contains("three votes"))
                })
            }
        },
    )
    .await;
    assert_eq!(correction["story_id"], id.as_str());

    // The editor's desk lists both versions, the correction on top, each with its trace.
    let desk = eventually(
        Duration::from_secs(30),
        "the correction on the desk",
        || {
            let (ed, id) = (&ed, id.clone());
            async move {
                let (_, page) = ed.get(&format!("/story/{id}")).await;
                page.contains("<td>v2</td><td>correction</td>")
                    .then_some(page)
            }
        },
    )
    .await;
    assert!(desk.contains("<td>v1</td><td>new</td>"), "{desk}");
    assert!(
        desk.contains("trace of v2") && desk.contains("trace of v1"),
        "{desk}"
    );

    // Withdrawing the alert replaces it on the phone (same collapse id), under the headline it
    // went out with; the story stays.
    let (status, _) = ed
        .post_form(&format!("/console/stories/{id}/retract"), &[], false)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let retraction = eventually(
        Duration::from_secs(60),
        "the retraction on the phone",
        || {
            let all = received.all();
            let id = id.clone();
            async move {
                all.into_iter()
                    .find(|a| a["story_id"] == id.as_str() && a["retracted"] == true)
            }
        },
    )
    .await;
    assert_eq!(
        retraction["headline"], "Withdrawn: Parliament passes the budget by three votes",
        "{retraction}"
    );
    assert_eq!(retraction["collapse_id"], correction["collapse_id"]);
    assert_eq!(retraction["correction"], true);
    let (status, page) = ed.get(&format!("/console/alerts/{id}/status")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Withdrawn"), "{page}");
    // Recalled again (a double click): nothing more reaches the phone (checked below).
    let (status, _) = ed
        .post_form(&format!("/console/stories/{id}/retract"), &[], false)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = reader
        .post_form(
            &format!("/console/stories/{id}/correct"),
            &[("headline", "x")],
            false,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "readers do not correct stories"
    );

    // A second device: above the threshold, the preview gives an approval link instead; the
    // editor who asked cannot use it, another editor can.
    pipeline
        .reader_with_phone("sam", "sam-phone", "medtop:11000000", &phone_url)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let id2 = submit(
        &pipeline,
        story(
            "web-ed-2",
            "Government announces snap election for June",
            "The prime minister called an early general election, the government said.",
            3,
        ),
    )
    .await;
    eventually(Duration::from_secs(60), "the second story indexed", || {
        let (ed, id2) = (&ed, id2.clone());
        async move { (ed.get("/console").await.1.contains(&id2)).then_some(()) }
    })
    .await;
    let form = [
        ("story_id", id2.as_str()),
        ("audience", "everyone"),
        ("segment", ""),
    ];
    let (_, preview) = ed.post_form("/console/alerts/preview", &form, true).await;
    assert!(preview.contains("second editor must approve"), "{preview}");
    // A fan-out has finished: the preview predicts the time to 90 % sent from its pace.
    assert!(
        preview.contains("devices a second, the pace of the last"),
        "{preview}"
    );
    let (status, _) = ed
        .post_form(
            "/console/alerts/send",
            &[
                ("story_id", id2.as_str()),
                ("audience", "everyone"),
                ("segment", ""),
                ("approval", ""),
            ],
            true,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "no sending a large alert alone"
    );
    // Pages escape what they show (a slash too): read the link as a browser would.
    let preview = preview.replace("&#x2f;", "/");
    let link = preview
        .split("href=\"")
        .find_map(|s| {
            s.strip_prefix("/console/approve?token=")
                .map(|t| t.split('"').next().unwrap().to_owned())
        })
        .expect("an approval link");
    let (status, _) = ed.get(&format!("/console/approve?token={link}")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the asking editor cannot approve"
    );
    let mut eve = Browser::new(addr);
    eve.sign_in("eve", true).await;
    let (status, page) = eve.get(&format!("/console/approve?token={link}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Approve and send"));
    let (status, sent) = eve
        .post_form(
            "/console/alerts/send",
            &[
                ("story_id", id2.as_str()),
                ("audience", "everyone"),
                ("segment", ""),
                ("approval", link.as_str()),
            ],
            true,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    eventually(
        Duration::from_secs(60),
        "the large alert on both phones",
        || {
            let all = received.all();
            let id2 = id2.clone();
            async move {
                let n = all
                    .iter()
                    .filter(|a| a["story_id"] == id2.as_str() && a["correction"] == false)
                    .count();
                (n >= 2).then_some(())
            }
        },
    )
    .await;
    // Killing a story takes it out at once, and withdraws its alert from both phones.
    let (status, _) = eve
        .post_form(&format!("/console/stories/{id2}/kill"), &[], false)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    eventually(Duration::from_secs(60), "the killed story gone", || {
        let (eve, id2) = (&eve, id2.clone());
        async move {
            let (status, _) = eve
                .json(
                    reqwest::Method::GET,
                    &format!("/api/v1/stories/{id2}"),
                    None,
                )
                .await;
            (status == StatusCode::NOT_FOUND).then_some(())
        }
    })
    .await;
    let withdrawn = eventually(Duration::from_secs(60), "the kill's retractions", || {
        let all = received.all();
        let id2 = id2.clone();
        async move {
            let w: Vec<_> = all
                .into_iter()
                .filter(|a| a["story_id"] == id2.as_str() && a["retracted"] == true)
                .collect();
            (w.len() >= 2).then_some(w)
        }
    })
    .await;
    let mut phones: Vec<&str> = withdrawn
        .iter()
        .filter_map(|a| a["device_id"].as_str())
        .collect();
    phones.sort_unstable();
    assert_eq!(phones, ["rita-phone", "sam-phone"], "once per phone");
    // The first alert, recalled twice, was withdrawn from its phone once.
    let first_withdrawn = received
        .all()
        .iter()
        .filter(|a| a["story_id"] == id.as_str() && a["retracted"] == true)
        .count();
    assert_eq!(first_withdrawn, 1, "a retraction reaches a phone once");
    // The approval is for that alert only.
    let (status, _) = eve
        .post_form(
            "/console/alerts/send",
            &[
                ("story_id", id.as_str()),
                ("audience", "everyone"),
                ("segment", ""),
                ("approval", link.as_str()),
            ],
            true,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_replays_a_dead_letter_once_its_cause_is_fixed() {
    use newsroom_platform::kafka::{Producer, topics};
    use newsroom_platform::metrics::{KafkaMetrics, Registry};
    use newsroom_proto::Message as _;
    use newsroom_proto::v1::{AlertRequest, Audience, audience::Target};

    let pipeline = Pipeline::start().await;
    let (addr, _web) = pipeline.start_web(&[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (phone, received, _sink) = newsroom_cli::sink::serve(listener, false).await;
    pipeline
        .reader_with_phone(
            "dora",
            "dora-phone",
            "medtop:11000000",
            &format!("http://{phone}/alerts"),
        )
        .await;
    let mut ed = Browser::new(addr);
    ed.sign_in("ed", true).await;

    // An editor's alert for a story notification does not know yet: a poison record, dead-lettered
    // with its reason.
    let guid = format!("dlq-{}", uuid::Uuid::new_v4().simple());
    let id = newsroom_ingest::identity::story_id("wire", &guid);
    let request = AlertRequest {
        story_id: id.clone(),
        audience: Some(Audience {
            target: Some(Target::Everyone(true)),
        }),
        requested_by: "editor".into(),
        requested_at: Some(std::time::SystemTime::now().into()),
        ..Default::default()
    };
    let producer = Producer::new(
        &pipeline.platform_config(Service::Notification),
        KafkaMetrics::register(&mut Registry::default()),
    )
    .unwrap();
    producer
        .send(
            &pipeline.topic(topics::NOTIFICATIONS_ALERTS),
            &id,
            &request.encode_to_vec(),
        )
        .await
        .unwrap();
    let page = eventually(
        Duration::from_secs(60),
        "the dead letter in the console",
        || {
            let (ed, id) = (&ed, id.clone());
            async move {
                let (_, page) = ed.get("/console/dead-letters").await;
                page.contains(&format!("data-key=\"{id}\"")).then_some(page)
            }
        },
    )
    .await;
    let row = &page[page.find(&format!("data-key=\"{id}\"")).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(&format!("story {id} is unknown")), "{row}");
    let value = |name: &str| -> String {
        let at = row.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
        row[at..at + row[at..].find('"').unwrap()].to_owned()
    };
    let (topic, partition, offset) = (value("topic"), value("partition"), value("offset"));
    assert!(topic.ends_with("notifications.alerts.dlq"), "{topic}");
    assert!(page.contains("record"), "the queue's depth: {page}");

    // A queue that is not the service's is refused, naming the field.
    let (status, body) = ed
        .post_form(
            "/console/dead-letters/replay",
            &[
                ("service", "notification"),
                ("topic", "stories.raw.dlq"),
                ("partition", "0"),
                ("offset", "0"),
            ],
            false,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("topic"), "{body}");

    // The cause fixed (the story arrives), the replay sends the alert.
    submit(
        &pipeline,
        story(
            &guid,
            "Council approves the new city budget",
            "The city council approved next year's budget.",
            3,
        ),
    )
    .await;
    pipeline.wait_story_in_notification(&id).await;
    assert!(!received.contains_story(&id), "no alert before the replay");
    let (status, _) = ed
        .post_form(
            "/console/dead-letters/replay",
            &[
                ("service", "notification"),
                ("topic", &topic),
                ("partition", &partition),
                ("offset", &offset),
            ],
            false,
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = ed
        .get(&format!(
            "/console/dead-letters?replayed={}",
            pipeline.topic(topics::NOTIFICATIONS_ALERTS)
        ))
        .await;
    assert!(page.contains("Replayed into"), "{page}");
    eventually(
        Duration::from_secs(60),
        "the replayed alert on the phone",
        || {
            let r = received.contains_story(&id);
            async move { r.then_some(()) }
        },
    )
    .await;
    pipeline.stop().await;
}

/// A small OpenID Connect provider for the sign-in test: discovery, an authorization endpoint
/// that signs in whoever comes (user `u-123`, an editor), a token endpoint that checks the PKCE
/// verifier against the challenge, and its JWKS. Its address.
async fn identity_provider(client_id: &'static str) -> SocketAddr {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Form, Query, State};
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::{get, post};
    use base64::Engine as _;
    use newsroom_platform::auth::dev::{DevKey, TokenSpec};
    use sha2::Digest as _;

    #[derive(Clone)]
    struct Idp {
        issuer: String,
        key: Arc<DevKey>,
        /// code → (PKCE challenge, nonce)
        codes: Arc<Mutex<HashMap<String, (String, String)>>>,
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let idp = Idp {
        issuer: format!("http://{addr}"),
        key: Arc::new(DevKey::generate().unwrap()),
        codes: Arc::default(),
    };
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(|State(idp): State<Idp>| async move {
                axum::Json(serde_json::json!({
                    "issuer": idp.issuer,
                    "authorization_endpoint": format!("{}/authorize", idp.issuer),
                    "token_endpoint": format!("{}/token", idp.issuer),
                    "jwks_uri": format!("{}/jwks", idp.issuer),
                }))
            }),
        )
        .route(
            "/jwks",
            get(|State(idp): State<Idp>| async move { axum::Json(idp.key.jwks()) }),
        )
        .route(
            "/authorize",
            get(
                move |State(idp): State<Idp>, Query(q): Query<HashMap<String, String>>| async move {
                    let ok = q.get("response_type").map(String::as_str) == Some("code")
                        && q.get("client_id").map(String::as_str) == Some(client_id)
                        && q.get("code_challenge_method").map(String::as_str) == Some("S256");
                    if !ok {
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            "bad authorization request",
                        )
                            .into_response();
                    }
                    let code = uuid::Uuid::new_v4().simple().to_string();
                    idp.codes.lock().unwrap().insert(
                        code.clone(),
                        (q["code_challenge"].clone(), q["nonce"].clone()),
                    );
                    Redirect::to(&format!(
                        "{}?code={code}&state={}",
                        q["redirect_uri"], q["state"]
                    ))
                    .into_response()
                },
            ),
        )
        .route(
            "/token",
            post(
                move |State(idp): State<Idp>, Form(f): Form<HashMap<String, String>>| async move {
                    let Some((challenge, nonce)) = idp.codes.lock().unwrap().remove(&f["code"])
                    else {
                        return (axum::http::StatusCode::BAD_REQUEST, "unknown code")
                            .into_response();
                    };
                    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
                    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(sha2::Sha256::digest(verifier.as_bytes()));
                    if computed != challenge
                        || f.get("client_id").map(String::as_str) != Some(client_id)
                    {
                        return (axum::http::StatusCode::BAD_REQUEST, "invalid_grant")
                            .into_response();
                    }
                    let mut spec = TokenSpec::new("u-123", &["editor"]);
                    spec.issuer = idp.issuer.clone();
                    spec.audience = client_id.to_owned();
                    spec.nonce = Some(nonce);
                    axum::Json(serde_json::json!({
                        "id_token": idp.key.mint(&spec),
                        "access_token": "opaque",
                        "token_type": "Bearer",
                    }))
                    .into_response()
                },
            ),
        )
        .with_state(idp);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

fn cookie_of(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_signs_in_with_the_openid_connect_provider_using_pkce() {
    let idp = identity_provider("newsroom-web").await;
    let pipeline = Pipeline::start_only(&[Service::Recommendation]).await;
    let issuer = format!("http://{idp}");
    let (addr, _web) = pipeline
        .start_web(&[
            ("NEWSROOM_WEB_OIDC_ISSUER", issuer.as_str()),
            ("NEWSROOM_WEB_OIDC_CLIENT_ID", "newsroom-web"),
            ("NEWSROOM_WEB_OIDC_NAME", "Newsroom SSO"),
            ("NEWSROOM_WEB_DEV_SIGNIN", "false"),
        ])
        .await;
    let web = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{web}/signin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Sign in with Newsroom SSO") && !page.contains("Development sign-in"),
        "{page}"
    );
    let status = http
        .post(format!("{web}/signin/dev"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=x")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "no development sign-in when it is off"
    );

    // To the provider, with a PKCE challenge; back with a code; a session for the ID token's
    // subject (an editor, by its roles).
    let start = http.get(format!("{web}/signin/oidc")).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let flow = cookie_of(&start, "newsroom_oidc");
    let to_idp = location(&start);
    assert!(
        to_idp.starts_with(&issuer) && to_idp.contains("code_challenge_method=S256"),
        "{to_idp}"
    );
    let back = http.get(&to_idp).send().await.unwrap();
    let callback = location(&back);
    assert!(
        callback.starts_with(&format!("{web}/signin/oidc/callback?code=")),
        "{callback}"
    );

    // Another browser (no flow cookie) cannot use the code; a wrong state is refused.
    let stolen = http.get(&callback).send().await.unwrap();
    assert_eq!(stolen.status(), StatusCode::BAD_REQUEST);
    let forged = http
        .get(callback.replace("state=", "state=x"))
        .header("cookie", &flow)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);

    let done = http
        .get(&callback)
        .header("cookie", &flow)
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        done.text().await
    );
    let session = cookie_of(&done, "newsroom_session");
    let home = http
        .get(format!("{web}/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.unwrap().contains("Your news, u-123"));
    let console = http
        .get(format!("{web}/console"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        console.status(),
        StatusCode::OK,
        "the provider's editor role opens the console"
    );

    // A code is good once: the provider forgot it, and web says the provider failed.
    let again = http
        .get(&callback)
        .header("cookie", &flow)
        .send()
        .await
        .unwrap();
    assert!(again.status().is_server_error() || again.status() == StatusCode::BAD_REQUEST);
    pipeline.stop().await;
}
