//! The JSON API under a client no one here wrote: Schemathesis (PyPI) reads
//! `/api/openapi.json` and sends what it generates from it — valid and invalid queries, paths
//! and bodies — to web in front of the real services, as a signed-in reader. It fails on any
//! 5xx (`not_a_server_error`), on a response that breaks its documented schema or content type,
//! and (tests/schemathesis/newsroom_checks.py) on any 4xx that is not the API's error body or a
//! 400 that names no field.
//!
//! Needs Schemathesis's `st` on the PATH or in ~/.local/bin (`pip install --user schemathesis`:
//! `.ci/run` does); it fails, rather than skips, when it is missing.

use std::path::PathBuf;
use std::time::Duration;

use newsroom_e2e::{Pipeline, Service, eventually};
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::{Story, SubmitStoryRequest};

fn st() -> PathBuf {
    let local = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".local/bin/st");
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("st"))
        .chain([local])
        .find(|p| p.exists())
        .expect("Schemathesis's `st` is missing: pip install --user schemathesis (.ci/run does)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_every_client_error_names_its_field() {
    let st = st();
    let pipeline = Pipeline::start().await;
    let (web, _stop) = pipeline.start_web(&[]).await;
    // A story in the reader's feed, so the API has something to answer with.
    IngestServiceClient::new(pipeline.channel(Service::Ingest).await)
        .submit_story(SubmitStoryRequest {
            story: Some(Story {
                source: "wire".into(),
                guid: "st-1".into(),
                headline: "Engineers test a new mobile network for rural areas".into(),
                body_html: "<p>A mobile network built for rural areas was tested by engineers.</p>"
                    .into(),
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .expect("SubmitStory");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signin = http
        .post(format!("http://{web}/signin/dev"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=schemathesis")
        .send()
        .await
        .unwrap();
    let cookie = signin.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    eventually(Duration::from_secs(60), "a story in the feed", || {
        let (http, cookie) = (http.clone(), cookie.clone());
        async move {
            let feed: serde_json::Value = http
                .get(format!("http://{web}/api/v1/feed"))
                .header("cookie", cookie)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (!feed["items"].as_array()?.is_empty()).then_some(())
        }
    })
    .await;

    let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemathesis");
    let out = tokio::process::Command::new(&st)
        .args([
            "run",
            &format!("http://{web}/api/openapi.json"),
            "--header",
            &format!("Cookie: {cookie}"),
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance,client_errors_say_what_was_wrong",
            "--max-examples",
            "25",
            "--seed",
            "7",
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
            "--no-color",
            "--generation-with-security-parameters",
            "false",
        ])
        .env("SCHEMATHESIS_HOOKS", "newsroom_checks")
        .env("PYTHONPATH", &hooks)
        .output()
        .await
        .expect("st runs");
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "Schemathesis found failures (report above)"
    );
    assert!(
        report.contains("/api/v1/feed") || report.contains("operations"),
        "Schemathesis tested the API's operations"
    );
    pipeline.stop().await;
}
