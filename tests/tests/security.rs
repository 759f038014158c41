//! What an attacker tries through the public API: a webhook device pointing at the cloud's
//! metadata service, at Redis on loopback, at a name that resolves to loopback — each refused
//! at registration with `INVALID_ARGUMENT` naming `device.address` (the platform's outbound
//! guard, which the webhook channel also applies at every connection, redirects never
//! followed); identifiers too large to be anything but an attack (a 10 KB guid, a 1 KB
//! idempotency key, a 10 KB follow) refused naming the field, nothing of them kept.

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
