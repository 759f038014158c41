//! What an attacker tries through the public API, each refused: a webhook device pointing at
//! the cloud's metadata service or at Redis on loopback (`INVALID_ARGUMENT` naming
//! `device.address`); identifiers too large to be anything but an attack; a reader reading or
//! changing another reader's feed, follows, devices or alerts (`PERMISSION_DENIED`, the reader
//! taken from a verified JWT); a source sending alert-level urgency it is not allowed; a service
//! started open on a network address (exit 64); more in-app streams than a reader may hold; an
//! import with too many items; bytes that are not UTF-8 in a field (`INVALID_ARGUMENT` naming
//! it); a body that sanitising would grow past what Kafka takes; interactions with made-up
//! stories.

use newsroom_e2e::{Pipeline, Service};
use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
use newsroom_proto::v1::{Channel, Device, RegisterDeviceRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_device_cannot_point_at_an_internal_address() {
    // As on a public address: the guard on (the tests' loopback default lifts it).
    let pipeline = Pipeline::start_with(
        &[Service::Notification],
        &[("NEWSROOM_WEBHOOK_ALLOW_PRIVATE", "false")],
    )
    .await;
    let mut notif = NotificationServiceClient::new(pipeline.channel(Service::Notification).await);
    let register = |address: &str| RegisterDeviceRequest {
        device: Some(Device {
            device_id: "attacker-phone".into(),
            user_id: "attacker".into(),
            channel: Channel::Webhook as i32,
            address: address.into(),
            ..Default::default()
        }),
    };
    for address in [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:6379/",
        "http://10.0.0.5/hook",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://localhost:6379/",
    ] {
        let status = notif
            .register_device(register(address))
            .await
            .expect_err(address);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{address}: {status:?}"
        );
        assert!(
            status.message().contains("device.address"),
            "{address}: {}",
            status.message()
        );
    }
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_identifiers_are_invalid_argument_naming_the_field_and_nothing_is_kept() {
    use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
    use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
    use newsroom_proto::v1::{
        FollowRequest, FollowTarget, GetProfileRequest, Story, SubmitStoryRequest, TargetKind,
    };
    let pipeline = Pipeline::start_only(&[Service::Ingest, Service::Recommendation]).await;
    let mut ingest = IngestServiceClient::new(pipeline.channel(Service::Ingest).await);
    let story = |guid: String| Story {
        source: "desk".into(),
        guid,
        headline: "Quake hits coastal town".into(),
        body_html: "<p>A strong quake hit the town at dawn.</p>".into(),
        ..Default::default()
    };
    let field_of = |status: tonic::Status| {
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        status
            .message()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    // A 10 KB guid, a 1 KB idempotency key: refused, naming the field.
    let refused = ingest
        .submit_story(SubmitStoryRequest {
            story: Some(story("g".repeat(10_000))),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(refused), "story.guid");
    let refused = ingest
        .submit_story(SubmitStoryRequest {
            story: Some(story("quake-1".into())),
            idempotency_key: "k".repeat(1_000),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(refused), "idempotency_key");
    // The same story with sane identifiers is accepted.
    ingest
        .submit_story(SubmitStoryRequest {
            story: Some(story("quake-1".into())),
            idempotency_key: "k-1".into(),
        })
        .await
        .expect("a story with sane identifiers");

    // A follow of a 10 KB entity name: refused; the reader follows nothing.
    let mut rec = RecommendationServiceClient::new(pipeline.channel(Service::Recommendation).await);
    let refused = rec
        .follow(FollowRequest {
            user_id: "reader".into(),
            target: Some(FollowTarget {
                kind: TargetKind::Entity as i32,
                value: "e".repeat(10_000),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(refused), "target.value");
    let profile = rec
        .get_profile(GetProfileRequest {
            user_id: "reader".into(),
        })
        .await
        .map(|p| p.into_inner().follows.len())
        .unwrap_or(0);
    assert_eq!(profile, 0, "nothing kept of the refused follow");
    pipeline.stop().await;
}

/// A request carrying `authorization: Bearer <token>`.
fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// A signing key in a directory of its own and the environment of services that trust only
/// it, as a deployment trusts its identity provider's JWKS (`enforce` mode, on loopback).
fn identity_provider(name: &str) -> (newsroom_platform::auth::dev::DevKey, Vec<(String, String)>) {
    use newsroom_platform::auth::{self, dev};
    let dir = std::env::temp_dir().join(format!("newsroom-idp-{name}-{}", uuid_like()));
    let key = dev::DevKey::load_or_create(&dir).unwrap();
    let env = vec![
        (auth::NEWSROOM_AUTH_MODE.to_owned(), "enforce".to_owned()),
        (
            auth::NEWSROOM_AUTH_JWKS.to_owned(),
            dir.join(dev::JWKS_FILE).display().to_string(),
        ),
        (
            auth::NEWSROOM_AUTH_ISSUER.to_owned(),
            dev::ISSUER.to_owned(),
        ),
        (
            auth::NEWSROOM_AUTH_AUDIENCE.to_owned(),
            dev::AUDIENCE.to_owned(),
        ),
    ];
    (key, env)
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_reads_and_changes_only_their_own_feed_follows_and_devices() {
    use newsroom_platform::auth::dev::TokenSpec;
    use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
    use newsroom_proto::v1::{
        FollowRequest, FollowTarget, GetFeedRequest, GetProfileRequest, SendAlertRequest,
        StreamAlertsRequest, TargetKind, UnregisterDeviceRequest,
    };
    let (idp, env) = identity_provider("readers");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let pipeline =
        Pipeline::start_with(&[Service::Recommendation, Service::Notification], &env).await;
    let mut rec = RecommendationServiceClient::new(pipeline.channel(Service::Recommendation).await);
    let mut notif = NotificationServiceClient::new(pipeline.channel(Service::Notification).await);
    let alice = idp.mint(&TokenSpec::new("alice", &[]));
    let bob = idp.mint(&TokenSpec::new("bob", &[]));
    let backend = idp.mint(&TokenSpec::new("web-backend", &["service"]));
    let editor = idp.mint(&TokenSpec::new("ed", &["editor"]));
    let feed = |user: &str| GetFeedRequest {
        user_id: user.into(),
        ..Default::default()
    };
    let follow = |user: &str| FollowRequest {
        user_id: user.into(),
        target: Some(FollowTarget {
            kind: TargetKind::Topic as i32,
            value: "medtop:13000000".into(),
        }),
    };

    // Before: anyone could read any reader's feed. Now no credential is UNAUTHENTICATED …
    let e = rec.get_feed(feed("alice")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    // … a forged token too (signed by a key the deployment does not trust) …
    let forged = newsroom_platform::auth::dev::DevKey::generate()
        .unwrap()
        .mint(&TokenSpec::new("alice", &[]));
    let e = rec.get_feed(bearer(feed(""), &forged)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    // … and a reader naming another reader is PERMISSION_DENIED, for reads and writes.
    let e = rec.get_feed(bearer(feed("alice"), &bob)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    let e = rec.follow(bearer(follow("alice"), &bob)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");

    // A reader acts for themself, the reader taken from the token.
    let p = rec
        .follow(bearer(follow(""), &alice))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.user_id, "alice");
    rec.get_feed(bearer(feed(""), &alice))
        .await
        .expect("alice's own feed");
    // The reader-facing backend acts for the reader it names.
    let p = rec
        .get_profile(bearer(
            GetProfileRequest {
                user_id: "alice".into(),
            },
            &backend,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.follows.len(), 1, "alice's follow, read by the backend");
    // Bob's follows are untouched by his failed attempt on alice's.
    let p = rec
        .get_profile(bearer(GetProfileRequest::default(), &bob))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((p.user_id.as_str(), p.follows.len()), ("bob", 0));

    // Devices: alice registers her own phone; bob can neither take it over, nor remove it,
    // nor listen to alice's in-app alerts; alice cannot register a phone for bob.
    let phone = |device_id: &str, user: &str| RegisterDeviceRequest {
        device: Some(Device {
            device_id: device_id.into(),
            user_id: user.into(),
            channel: Channel::Webhook as i32,
            address: "http://127.0.0.1:9/alice".into(),
            ..Default::default()
        }),
    };
    let d = notif
        .register_device(bearer(phone("alice-phone", ""), &alice))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.user_id, "alice");
    for (what, status) in [
        (
            "alice registering for bob",
            notif
                .register_device(bearer(phone("alice-2", "bob"), &alice))
                .await
                .map(|_| ()),
        ),
        (
            "bob taking alice's device id",
            notif
                .register_device(bearer(phone("alice-phone", ""), &bob))
                .await
                .map(|_| ()),
        ),
        (
            "bob removing alice's device",
            notif
                .unregister_device(bearer(
                    UnregisterDeviceRequest {
                        device_id: "alice-phone".into(),
                    },
                    &bob,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "bob streaming alice's alerts",
            notif
                .stream_alerts(bearer(
                    StreamAlertsRequest {
                        user_id: "alice".into(),
                        ..Default::default()
                    },
                    &bob,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "a reader sending an alert",
            notif
                .send_alert(bearer(
                    SendAlertRequest {
                        story_id: "any".into(),
                        ..Default::default()
                    },
                    &alice,
                ))
                .await
                .map(|_| ()),
        ),
    ] {
        let e = status.expect_err(what);
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{what}: {e:?}");
    }
    // The editor is let through to SendAlert (and learns the story does not exist).
    let e = notif
        .send_alert(bearer(
            SendAlertRequest {
                story_id: "no-such-story".into(),
                ..Default::default()
            },
            &editor,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    // Alice's device is still hers, and she may remove it.
    notif
        .unregister_device(bearer(
            UnregisterDeviceRequest {
                device_id: "alice-phone".into(),
            },
            &alice,
        ))
        .await
        .expect("alice removes her own phone");
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_allowed_source_sends_alert_level_urgency() {
    use newsroom_platform::auth::dev::TokenSpec;
    use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
    use newsroom_proto::v1::{Story, SubmitStoryRequest};
    const WIRE_KEY: &str = "wire-key-0123456789abcdef";
    const BLOG_KEY: &str = "blog-key-0123456789abcdef";
    let (idp, mut env) = identity_provider("sources");
    let keys = format!("{WIRE_KEY}=wire,{BLOG_KEY}=blog");
    env.push(("NEWSROOM_INGEST_API_KEYS".into(), keys));
    env.push(("NEWSROOM_INGEST_ALERT_SOURCES".into(), "wire".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let pipeline = Pipeline::start_with(&[Service::Ingest], &env).await;
    let mut ingest = IngestServiceClient::new(pipeline.channel(Service::Ingest).await);
    let story = |source: &str, guid: &str, urgency: u32| SubmitStoryRequest {
        story: Some(Story {
            source: source.into(),
            guid: guid.into(),
            headline: "Quake hits coastal town".into(),
            body_html: "<p>A strong quake hit the town at dawn.</p>".into(),
            urgency,
            ..Default::default()
        }),
        idempotency_key: String::new(),
    };
    // Before: any source could send urgency 1 and so alert every follower.
    let e = ingest
        .submit_story(bearer(story("blog", "b-1", 1), BLOG_KEY))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().starts_with("story.urgency"), "{}", e.message());
    // The same story at routine urgency is the blog's to send; the wire may send a flash.
    ingest
        .submit_story(bearer(story("blog", "b-1", 4), BLOG_KEY))
        .await
        .expect("routine urgency");
    ingest
        .submit_story(bearer(story("wire", "w-1", 1), WIRE_KEY))
        .await
        .expect("the wire's flash");
    // A source's JWT (issued by the identity provider) submits for its `source` claim only,
    // under the same urgency rule.
    let mut spec = TokenSpec::new("blog-cms", &["source"]);
    spec.source = Some("blog".into());
    let blog_jwt = idp.mint(&spec);
    ingest
        .submit_story(bearer(story("blog", "b-2", 5), &blog_jwt))
        .await
        .expect("a source token");
    let e = ingest
        .submit_story(bearer(story("wire", "w-2", 5), &blog_jwt))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    // Without a credential, off the local mode, nothing is accepted.
    let e = ingest
        .submit_story(story("blog", "b-3", 5))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_service_runs_open_on_a_network_address() {
    let pipeline = Pipeline::start_only(&[]).await;
    for (binary, service, extra) in [
        // Ingest without keys off loopback: it used to accept anyone.
        ("newsroom-ingest", Service::Ingest, vec![]),
        // The local mode (no credential = every role) asked for on a network address.
        (
            "newsroom-recommendation",
            Service::Recommendation,
            vec![("NEWSROOM_AUTH_MODE", "local")],
        ),
        // Off loopback a service needs its identity provider's keys (or back-office tokens).
        ("newsroom-notification", Service::Notification, vec![]),
    ] {
        let out = tokio::process::Command::new(newsroom_e2e::binary(binary))
            .envs(pipeline.env(service))
            .env_remove("NEWSROOM_AUTH_MODE")
            .envs(extra)
            .env("NEWSROOM_GRPC_ADDR", "0.0.0.0:0")
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{binary}: {stderr}");
        assert!(
            stderr.contains("NEWSROOM_INGEST_API_KEYS")
                || stderr.contains("NEWSROOM_AUTH_MODE")
                || stderr.contains("NEWSROOM_AUTH_JWKS"),
            "{binary}: {stderr}"
        );
    }
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_app_streams_are_capped_per_reader_and_a_closed_one_frees_its_place() {
    use newsroom_proto::v1::StreamAlertsRequest;
    let pipeline = Pipeline::start_with(
        &[Service::Notification],
        &[("NEWSROOM_STREAMS_PER_READER", "2")],
    )
    .await;
    let mut notif = NotificationServiceClient::new(pipeline.channel(Service::Notification).await);
    let open = |user: &str| StreamAlertsRequest {
        user_id: user.into(),
        ..Default::default()
    };
    let first = notif
        .stream_alerts(open("alice"))
        .await
        .expect("first stream");
    let _second = notif
        .stream_alerts(open("alice"))
        .await
        .expect("second stream");
    // Before: every call opened a Redis connection and a task, without bound.
    let e = notif.stream_alerts(open("alice")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(e.message().starts_with("user_id"), "{}", e.message());
    // Another reader is not affected; a closed stream frees alice's place.
    let _bob = notif
        .stream_alerts(open("bob"))
        .await
        .expect("bob's stream");
    drop(first);
    newsroom_e2e::eventually(
        std::time::Duration::from_secs(10),
        "alice's closed stream freeing its place",
        || {
            let mut notif = notif.clone();
            async move { notif.stream_alerts(open("alice")).await.ok() }
        },
    )
    .await;
    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_with_more_items_than_allowed_is_refused_whole() {
    use newsroom_proto::v1::ImportFeedRequest;
    use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
    let pipeline =
        Pipeline::start_with(&[Service::Ingest], &[("NEWSROOM_MAX_IMPORT_ITEMS", "3")]).await;
    let mut ingest = IngestServiceClient::new(pipeline.channel(Service::Ingest).await);
    let items: String = (0..5)
        .map(|i| {
            format!(
                "<item><title>Story {i}</title><guid>g-{i}</guid>\
                 <description>Body of story {i}.</description></item>"
            )
        })
        .collect();
    let rss = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire</title>{items}</channel></rss>"
    );
    let e = ingest
        .import_feed(ImportFeedRequest {
            document: rss.into_bytes(),
            format: String::new(),
            source: "wire".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("document"), "{}", e.message());
    assert!(e.message().contains("at most 3"), "{}", e.message());
    // Nothing of it was written.
    assert!(
        pipeline.records("stories.raw").await.is_empty(),
        "a refused import wrote nothing"
    );
    pipeline.stop().await;
}

/// Sends raw bytes as a request message: what a client no one here wrote may send.
#[derive(Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf as _;
        let v = src.chunk().to_vec();
        src.advance(v.len());
        Ok(Some(v))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_field_is_invalid_argument_naming_it_and_sanitising_cannot_overflow() {
    use newsroom_proto::Message as _;
    use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
    use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
    use newsroom_proto::v1::{InteractionKind, InteractionRequest, Story, SubmitStoryRequest};
    let pipeline = Pipeline::start_only(&[Service::Ingest, Service::Recommendation]).await;
    let channel = pipeline.channel(Service::Ingest).await;

    // A headline whose bytes are not UTF-8: before, INTERNAL; now INVALID_ARGUMENT naming it.
    let mut bytes = SubmitStoryRequest {
        story: Some(Story {
            source: "desk".into(),
            guid: "utf8-1".into(),
            headline: "HEADLINE-MARKER".into(),
            body_html: "<p>Body.</p>".into(),
            ..Default::default()
        }),
        idempotency_key: String::new(),
    }
    .encode_to_vec();
    let at = bytes
        .windows(15)
        .position(|w| w == b"HEADLINE-MARKER")
        .unwrap();
    bytes[at..at + 15].fill(0xFF);
    let bad = bytes.clone();
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let e = grpc
        .unary(
            tonic::Request::new(bytes),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/newsroom.v1.IngestService/SubmitStory",
            ),
            RawCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("headline"), "{}", e.message());
    // The same message inside a bulk stream: the stream ends on it, naming its position.
    grpc.ready().await.unwrap();
    let answer = grpc
        .streaming(
            tonic::Request::new(tokio_stream::iter(vec![bad.clone()])),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/newsroom.v1.IngestService/SubmitStories",
            ),
            RawCodec,
        )
        .await;
    let e = match answer {
        Ok(mut stream) => stream.get_mut().message().await.unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("stories[0]"), "{}", e.message());

    // 300,000 `<` in a body are 300 KB in, 1.2 MB once sanitised (`&lt;`): refused naming the
    // story, not accepted and then refused by Kafka.
    let e = IngestServiceClient::new(channel)
        .submit_story(SubmitStoryRequest {
            story: Some(Story {
                source: "desk".into(),
                guid: "lt-1".into(),
                headline: "Angle brackets".into(),
                body_html: format!("<p>{}</p>", "<".repeat(300_000)),
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("after sanitising"), "{}", e.message());

    // Trending and a reader's history only count stories that exist.
    let e = RecommendationServiceClient::new(pipeline.channel(Service::Recommendation).await)
        .record_interaction(InteractionRequest {
            user_id: "reader".into(),
            story_id: "made-up-story-id".into(),
            kind: InteractionKind::Share as i32,
            dwell_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    pipeline.stop().await;
}
