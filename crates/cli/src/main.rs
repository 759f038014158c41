//! `newsroom`: the command line for editors and operators.
//!
//! Exit codes: 0 success, 1 the service answered with an error, 2 bad usage (clap),
//! 69 a service could not be reached (EX_UNAVAILABLE), 66 an input file is missing (EX_NOINPUT).

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use newsroom_proto::v1::{
    Channel, Device, FollowRequest, FollowTarget, GetAlertRequest, GetFeedRequest,
    RegisterDeviceRequest, Story, SubmitStoryRequest, SubmitStoryResponse, TargetKind,
};
use tonic::transport::Endpoint;

#[derive(Parser)]
#[command(
    name = "newsroom",
    version,
    about = "Editors' and operators' command line for Newsroom"
)]
struct Cli {
    /// Ingest's gRPC address.
    #[arg(
        long,
        env = "NEWSROOM_INGEST_URL",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    ingest: String,
    /// Recommendation's gRPC address.
    #[arg(
        long,
        env = "NEWSROOM_RECOMMENDATION_URL",
        default_value = "http://127.0.0.1:50053",
        global = true
    )]
    recommendation: String,
    /// Notification's gRPC address.
    #[arg(
        long,
        env = "NEWSROOM_NOTIFICATION_URL",
        default_value = "http://127.0.0.1:50054",
        global = true
    )]
    notification: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Import a story or feed file (RSS, Atom, JSON Feed, NINJS, NewsML-G2; detected).
    Submit {
        file: PathBuf,
        /// Format hint: rss, atom, jsonfeed, ninjs, newsml-g2 (default: detect).
        #[arg(long, default_value = "")]
        format: String,
        /// The source the story is submitted for.
        #[arg(long, default_value = "cms")]
        source: String,
    },
    /// Follow an IPTC Media Topic for a user.
    Follow {
        #[arg(long)]
        user: String,
        /// e.g. medtop:13000000 (science and technology)
        #[arg(long)]
        topic: String,
    },
    /// Show a user's feed.
    Feed {
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Register a webhook device for a user.
    RegisterWebhook {
        #[arg(long)]
        user: String,
        #[arg(long)]
        device: String,
        #[arg(long)]
        url: String,
    },
    /// Show an alert's counts.
    Alert { story_id: String },
    /// Load the demo: a reader who follows three topics, a webhook phone, the seed story, BBC
    /// stories and one flash story.
    Demo {
        /// The shared data folder (seed-story.ninjs.json, bbc-news.jsonl).
        #[arg(long, default_value = "../shared/data")]
        data: PathBuf,
        /// BBC stories to load.
        #[arg(long, default_value_t = 200)]
        count: usize,
        #[arg(long, default_value = "demo")]
        user: String,
        /// Webhook URL of the demo reader's phone (see `webhook-sink`); none if empty.
        #[arg(long, default_value = "")]
        webhook: String,
    },
    /// A phone-like webhook endpoint that prints each alert it receives as a JSON line.
    WebhookSink {
        #[arg(long, default_value = "127.0.0.1:8099")]
        addr: String,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let code = match run(cli).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("newsroom: {e:#}");
            if let Some(status) = e.downcast_ref::<tonic::Status>() {
                if status.code() == tonic::Code::Unavailable {
                    69
                } else {
                    1
                }
            } else if e.downcast_ref::<tonic::transport::Error>().is_some() {
                69
            } else if e
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
            {
                66
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}

async fn channel(url: &str) -> anyhow::Result<tonic::transport::Channel> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?)
}

fn print_json(v: &serde_json::Value) {
    println!("{v}");
}

fn outcome_name(r: &SubmitStoryResponse) -> &'static str {
    r.outcome().as_str_name()
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.output == Output::Json;
    match cli.command {
        Command::Submit {
            file,
            format,
            source,
        } => {
            let document = std::fs::read(&file)?;
            let mut ingest = IngestServiceClient::new(channel(&cli.ingest).await?);
            let imported = import(&mut ingest, document, &format, &source).await?;
            for r in &imported.results {
                if json {
                    print_json(&serde_json::json!({
                        "story_id": r.story_id, "version": r.version, "outcome": outcome_name(r),
                    }));
                } else {
                    println!("{} v{} {}", r.story_id, r.version, outcome_name(r));
                }
            }
            for e in &imported.errors {
                if json {
                    print_json(&serde_json::json!({
                        "index": e.index, "guid": e.guid, "field": e.field, "error": e.reason,
                    }));
                } else {
                    eprintln!("item {} ({}): {}: {}", e.index, e.guid, e.field, e.reason);
                }
            }
            if imported.results.is_empty() && !imported.errors.is_empty() {
                anyhow::bail!("nothing imported");
            }
        }
        Command::Follow { user, topic } => {
            let mut rec = RecommendationServiceClient::new(channel(&cli.recommendation).await?);
            let p = follow(&mut rec, &user, &topic).await?;
            let follows: Vec<String> = p.follows.iter().map(|f| f.value.clone()).collect();
            if json {
                print_json(&serde_json::json!({"user_id": p.user_id, "follows": follows}));
            } else {
                println!("{} follows {}", p.user_id, follows.join(", "));
            }
        }
        Command::Feed { user, limit } => {
            let mut rec = RecommendationServiceClient::new(channel(&cli.recommendation).await?);
            let feed = rec
                .get_feed(GetFeedRequest {
                    user_id: user,
                    limit,
                    cursor: String::new(),
                })
                .await?
                .into_inner();
            for item in &feed.items {
                let s = item.story.clone().unwrap_or_default();
                if json {
                    print_json(&serde_json::json!({
                        "story_id": s.id, "version": s.version, "headline": s.headline,
                        "score": item.score, "reasons": item.reasons,
                        "topics": item.topics.iter().map(|t| &t.code).collect::<Vec<_>>(),
                    }));
                } else {
                    println!(
                        "{:.2}  {}  [{}]",
                        item.score,
                        s.headline,
                        item.reasons.join("; ")
                    );
                }
            }
        }
        Command::RegisterWebhook { user, device, url } => {
            let mut notif = NotificationServiceClient::new(channel(&cli.notification).await?);
            register(&mut notif, &user, &device, &url).await?;
            println!("registered {device} for {user} → {url}");
        }
        Command::Alert { story_id } => {
            let mut notif = NotificationServiceClient::new(channel(&cli.notification).await?);
            let a = notif
                .get_alert(GetAlertRequest { story_id })
                .await?
                .into_inner();
            if json {
                print_json(&serde_json::json!({
                    "story_id": a.story_id, "targeted": a.targeted, "sent": a.sent,
                    "delivered": a.delivered, "failed": a.failed, "suppressed": a.suppressed,
                }));
            } else {
                println!(
                    "{}: targeted {} sent {} delivered {} failed {} suppressed {:?}",
                    a.story_id, a.targeted, a.sent, a.delivered, a.failed, a.suppressed
                );
            }
        }
        Command::Demo {
            data,
            count,
            user,
            webhook,
        } => {
            demo(
                &cli.ingest,
                &cli.recommendation,
                &cli.notification,
                &data,
                count,
                &user,
                &webhook,
            )
            .await?;
        }
        Command::WebhookSink { addr } => {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            let (addr, _received, task) = newsroom_cli::sink::serve(listener, true).await;
            eprintln!("webhook sink listening on http://{addr}/");
            task.await?;
        }
    }
    Ok(())
}

async fn submit(
    ingest: &mut IngestServiceClient<tonic::transport::Channel>,
    story: Story,
) -> anyhow::Result<SubmitStoryResponse> {
    Ok(ingest
        .submit_story(SubmitStoryRequest {
            story: Some(story),
            idempotency_key: String::new(),
        })
        .await?
        .into_inner())
}

async fn import(
    ingest: &mut IngestServiceClient<tonic::transport::Channel>,
    document: Vec<u8>,
    format: &str,
    source: &str,
) -> anyhow::Result<newsroom_proto::v1::ImportFeedResponse> {
    Ok(ingest
        .import_feed(newsroom_proto::v1::ImportFeedRequest {
            document,
            format: format.to_owned(),
            source: source.to_owned(),
        })
        .await?
        .into_inner())
}

async fn follow(
    rec: &mut RecommendationServiceClient<tonic::transport::Channel>,
    user: &str,
    topic: &str,
) -> anyhow::Result<newsroom_proto::v1::UserProfile> {
    Ok(rec
        .follow(FollowRequest {
            user_id: user.to_owned(),
            target: Some(FollowTarget {
                kind: TargetKind::Topic as i32,
                value: topic.to_owned(),
            }),
        })
        .await?
        .into_inner())
}

async fn register(
    notif: &mut NotificationServiceClient<tonic::transport::Channel>,
    user: &str,
    device: &str,
    url: &str,
) -> anyhow::Result<()> {
    notif
        .register_device(RegisterDeviceRequest {
            device: Some(Device {
                device_id: device.to_owned(),
                user_id: user.to_owned(),
                channel: Channel::Webhook as i32,
                address: url.to_owned(),
                ..Default::default()
            }),
        })
        .await?;
    Ok(())
}

async fn demo(
    ingest_url: &str,
    rec_url: &str,
    notif_url: &str,
    data: &std::path::Path,
    count: usize,
    user: &str,
    webhook: &str,
) -> anyhow::Result<()> {
    let mut ingest = IngestServiceClient::new(channel(ingest_url).await?);
    let mut rec = RecommendationServiceClient::new(channel(rec_url).await?);
    for topic in ["medtop:13000000", "medtop:11000000", "medtop:04000000"] {
        follow(&mut rec, user, topic).await?;
    }
    eprintln!("{user} follows science and technology, politics, economy");
    if !webhook.is_empty() {
        let mut notif = NotificationServiceClient::new(channel(notif_url).await?);
        register(&mut notif, user, &format!("{user}-phone"), webhook).await?;
        eprintln!("{user}'s phone is the webhook {webhook}");
    }
    // Give notification a moment to read the profile before the flash story arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let seed_path = data.join("seed-story.ninjs.json");
    let seed = std::fs::read(&seed_path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", seed_path.display()))?;
    let imported = import(&mut ingest, seed, "ninjs", "scmp").await?;
    let r = imported
        .results
        .first()
        .ok_or_else(|| anyhow::anyhow!("the seed story was refused: {:?}", imported.errors))?;
    eprintln!(
        "seed story {} v{} {}",
        r.story_id,
        r.version,
        outcome_name(r)
    );

    let articles = newsroom_cli::bbc::read(&data.join("bbc-news.jsonl"), usize::MAX)?;
    // Every fifth article, so all five BBC categories are in the demo.
    let stories: Vec<SubmitStoryRequest> = articles
        .iter()
        .step_by(5)
        .take(count)
        .map(|a| SubmitStoryRequest {
            story: Some(a.to_story()),
            idempotency_key: String::new(),
        })
        .collect();
    let n = stories.len();
    let mut responses = ingest
        .submit_stories(tokio_stream::iter(stories))
        .await?
        .into_inner();
    let mut accepted = 0;
    while let Some(r) = responses.message().await? {
        if r.outcome() != newsroom_proto::v1::Outcome::Duplicate {
            accepted += 1;
        }
    }
    eprintln!("{n} BBC stories submitted ({accepted} new or updated)");

    let flash = Story {
        source: "newsroom-demo".to_owned(),
        guid: "demo-flash-1".to_owned(),
        headline: "FLASH: Major internet outage takes down cloud services and mobile networks"
            .to_owned(),
        body_html: "<p>A major outage at a cloud computing provider has taken down websites, \
                    apps and mobile data networks across several countries, engineers said.</p>"
            .to_owned(),
        urgency: 1,
        language: "en".to_owned(),
        ..Default::default()
    };
    let r = submit(&mut ingest, flash).await?;
    eprintln!(
        "flash story {} v{} {}",
        r.story_id,
        r.version,
        outcome_name(&r)
    );
    Ok(())
}
