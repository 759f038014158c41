//! TLS everywhere, through the public API: a pipeline whose services speak TLS on every
//! connection (gRPC with mTLS, Kafka SASL_SSL with SCRAM, Redis TLS — see
//! `newsroom_e2e::tls`) carries a story from `SubmitStory` to a follower's feed and phone; a
//! plaintext client, and a TLS client without a certificate of the deployment's CA, are
//! refused. (`just test-tls` also runs the whole pipeline suite this way.)

use std::time::Duration;

use newsroom_e2e::{Pipeline, Service, eventually, tls};
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::{Story, SubmitStoryRequest};
use tonic::transport::Channel;

const TECH: &str = "medtop:13000000";

/// The call failed in the transport, not with an answer of the service: depending on when the
/// server drops it, never connected, closed mid-handshake, reset, or a TLS record read as an
/// HTTP/2 frame (`INTERNAL`, "h2 protocol error") — each a `tonic::transport::Error`.
fn assert_refused(e: &tonic::Status) {
    let transport = std::error::Error::source(e)
        .is_some_and(|s| s.downcast_ref::<tonic::transport::Error>().is_some());
    assert!(transport, "not refused by the transport: {e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_story_crosses_a_pipeline_that_speaks_only_tls_and_plaintext_is_refused() {
    let pipeline = Pipeline::start_tls(&Service::ALL, &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (phone, received, _sink) = newsroom_cli::sink::serve(listener, false).await;
    pipeline
        .reader_with_phone(
            "tls-reader",
            "tls-phone",
            TECH,
            &format!("http://{phone}/alerts"),
        )
        .await;
    let id = pipeline
        .submit(Story {
            source: "wire".into(),
            guid: "tls-flash-1".into(),
            headline: "Chip makers race to build AI data centres".into(),
            body_html: "<p>Semiconductor firms and cloud computing companies announced new \
                        investments in artificial intelligence data centres and software.</p>"
                .into(),
            tags: vec![TECH.into()],
            urgency: 1,
            ..Default::default()
        })
        .await;
    // Through SASL_SSL to enrichment, to recommendation (Redis over TLS), to the feed …
    eventually(Duration::from_secs(60), "the story in the feed", || {
        let (pipeline, id) = (&pipeline, id.clone());
        async move {
            let feed = pipeline.feed("tls-reader").await;
            feed.iter()
                .any(|i| i.story.as_ref().is_some_and(|s| s.id == id))
                .then_some(())
        }
    })
    .await;
    // … and to the phone, once.
    eventually(Duration::from_secs(60), "the flash on the phone", || {
        let n = received.all().len();
        async move { (n == 1).then_some(()) }
    })
    .await;

    let addr = pipeline.grpc_addr(Service::Ingest);
    let story = || SubmitStoryRequest {
        story: Some(Story {
            source: "wire".into(),
            guid: "tls-plain-1".into(),
            headline: "Plain".into(),
            body_html: "<p>Plain text.</p>".into(),
            ..Default::default()
        }),
        idempotency_key: String::new(),
    };
    // A plaintext client gets no answer from a TLS server.
    let plain = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    let e = IngestServiceClient::new(plain)
        .submit_story(story())
        .await
        .unwrap_err();
    assert_refused(&e);
    // TLS, but no client certificate: mTLS refuses the handshake.
    let anonymous = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls::client_config(false))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    let e = IngestServiceClient::new(anonymous)
        .submit_story(story())
        .await
        .unwrap_err();
    assert_refused(&e);
    // With the client certificate it is accepted.
    IngestServiceClient::new(pipeline.channel(Service::Ingest).await)
        .submit_story(story())
        .await
        .expect("an mTLS client");
    pipeline.stop().await;
}
