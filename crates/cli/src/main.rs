//! `newsroom`: the command line for editors and operators.
//!
//! Exit codes: 0 success, 1 the service answered with an error, 2 bad usage (clap, or a
//! topic `replay` cannot read), 3 `lag --max-lag` exceeded, 69 a service or Kafka could not be reached (EX_UNAVAILABLE),
//! 66 an input file or topic is missing (EX_NOINPUT), 75 `--timeout-secs` passed before the
//! command was done (EX_TEMPFAIL: try again).

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use newsroom_cli::ops::{self, OpsError};
use newsroom_cli::progress;
use newsroom_cli::replay::{Position, ReplayError, ReplayRequest};
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
    about = "Editors' and operators' command line for Newsroom",
    after_help = "Exit codes: 0 ok; 1 the service answered with an error; 2 bad usage (or a topic replay cannot read); 3 lag above --max-lag; 66 missing file or topic; 69 service or Kafka unreachable; 75 timed out."
)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(clap::Args)]
struct Globals {
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
    /// Bearer token for notification (an editor's for `send-alert`); not needed when
    /// notification runs in `local` auth mode on loopback.
    #[arg(long, env = "NEWSROOM_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Kafka bootstrap servers (`tail`, `lag`, `replay`).
    #[arg(
        long,
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    brokers: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    output: Output,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Import a story or feed (RSS, Atom, JSON Feed, NINJS, NewsML-G2; detected) from a file,
    /// or from an http(s) URL, fetched once.
    #[command(visible_alias = "import")]
    Submit {
        /// A file, or an http:// or https:// URL.
        file: String,
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
    /// Send an editor's alert for a story (needs the editor role), then with --watch follow
    /// its counts until the fan-out finished.
    SendAlert {
        story_id: String,
        /// Every registered device, not only the followers of the story's topics and entities.
        #[arg(long, conflicts_with = "segment")]
        everyone: bool,
        /// A segment configured on notification (NEWSROOM_SEGMENTS).
        #[arg(long)]
        segment: Option<String>,
        /// Through quiet hours and daily budgets (not through opt-outs and languages).
        #[arg(long)]
        critical: bool,
        #[arg(long)]
        watch: bool,
        /// With --watch: give up (exit 75) after this long.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Show an alert's counts; with --watch, print them each time they change until the
    /// fan-out finished.
    Alert {
        story_id: String,
        #[arg(long)]
        watch: bool,
        /// With --watch: give up (exit 75) after this long.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Print a topic's records decoded to JSON, one per line (full topic name, prefix included).
    Tail {
        topic: String,
        /// Start at the oldest retained record (default: only new records).
        #[arg(long)]
        from_beginning: bool,
        /// Stop after this many records.
        #[arg(long)]
        count: Option<usize>,
        /// Stop after this long; with --count, fewer records than asked is exit 75.
        #[arg(long)]
        timeout_secs: Option<u64>,
    },
    /// Show a consumer group's lag per partition (committed offset to partition end).
    Lag {
        /// The consumer group, e.g. newsroom-enrichment.
        #[arg(long)]
        group: String,
        /// Full topic names (repeat); default: the topics of the system (with --topic-prefix)
        /// where the group has committed, i.e. the ones it consumes.
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// Prefix of the default topic names (NEWSROOM_TOPIC_PREFIX).
        #[arg(long, env = "NEWSROOM_TOPIC_PREFIX", default_value = "")]
        topic_prefix: String,
        /// Exit 3 when any partition's lag is above this.
        #[arg(long)]
        max_lag: Option<i64>,
    },
    /// Send a range of a story topic back through enrichment.
    ///
    /// Each story is written to stories.raw again (same key, version and accepted_at) and enriched by the pipeline
    /// enrichment runs now. Reads stories.raw, stories.raw.dlq, stories.enriched or
    /// stories.enriched.dlq (full name, prefix included); a version older than the story's
    /// latest is not written back.
    Replay {
        topic: String,
        /// Partition to read (repeat); default: every partition.
        #[arg(long = "partition")]
        partitions: Vec<i32>,
        /// Start of the range: an offset, an RFC 3339 time or `beginning`.
        #[arg(long, default_value = "beginning")]
        from: Position,
        /// End of the range, excluded: an offset, an RFC 3339 time or `end` (the end when the
        /// replay starts).
        #[arg(long, default_value = "end")]
        to: Position,
        /// Only this story's records.
        #[arg(long)]
        story: Option<String>,
        /// Read and count; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Then wait until enrichment's consumer group has handled every record written.
        #[arg(long)]
        wait: bool,
        /// Enrichment's consumer group (NEWSROOM_CONSUMER_GROUP of the enrichment service).
        #[arg(long, default_value = "newsroom-enrichment")]
        group: String,
        /// With --wait: give up (exit 75) after this long.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
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
            let ops = e
                .downcast_ref::<OpsError>()
                .or_else(|| match e.downcast_ref() {
                    Some(ReplayError::Ops(ops)) => Some(ops),
                    _ => None,
                });
            if let Some(ops) = ops {
                match ops {
                    OpsError::Kafka(_) | OpsError::Unreachable(_) => 69,
                    OpsError::UnknownTopic(_) => 66,
                    OpsError::Timeout(_) => 75,
                }
            } else if e.downcast_ref::<ReplayError>().is_some() {
                2
            } else if e.downcast_ref::<LagAbove>().is_some() {
                3
            } else if let Some(status) = e.downcast_ref::<tonic::Status>() {
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

/// `lag --max-lag` was exceeded (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("lag {lag} on {topic}[{partition}] is above {max}")]
struct LagAbove {
    topic: String,
    partition: i32,
    lag: i64,
    max: i64,
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

fn print_alert(a: &newsroom_proto::v1::AlertStatus, json: bool) {
    if json {
        let finished_at = a.finished_at.and_then(|t| {
            chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
                .map(|t| t.to_rfc3339())
        });
        print_json(&serde_json::json!({
            "story_id": a.story_id, "version": a.version, "targeted": a.targeted, "sent": a.sent,
            "delivered": a.delivered, "failed": a.failed, "suppressed": a.suppressed,
            "finished_at": finished_at,
        }));
    } else {
        println!(
            "{}: targeted {} sent {} delivered {} failed {} suppressed {:?}{}",
            a.story_id,
            a.targeted,
            a.sent,
            a.delivered,
            a.failed,
            a.suppressed,
            if a.finished_at.is_some() {
                " (finished)"
            } else {
                ""
            }
        );
    }
}

fn outcome_name(r: &SubmitStoryResponse) -> &'static str {
    r.outcome().as_str_name()
}

async fn run(Cli { globals, command }: Cli) -> anyhow::Result<()> {
    let cli = &globals;
    let json = cli.output == Output::Json;
    match command {
        Command::Submit {
            file,
            format,
            source,
        } => {
            let document = read_document(&file).await?;
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
            let mut notif = notification(&cli.notification, cli.token.clone()).await?;
            register(&mut notif, &user, &device, &url).await?;
            if json {
                print_json(&serde_json::json!({
                    "user_id": user, "device_id": device, "channel": "webhook", "address": url,
                }));
            } else {
                println!("registered {device} for {user} → {url}");
            }
        }
        Command::SendAlert {
            story_id,
            everyone,
            segment,
            critical,
            watch,
            timeout_secs,
        } => {
            use newsroom_proto::v1::{Audience, SendAlertRequest, audience::Target};
            let mut notif = notification(&cli.notification, cli.token.clone()).await?;
            let target = match (everyone, segment) {
                (true, _) => Target::Everyone(true),
                (false, Some(name)) => Target::Segment(name),
                (false, None) => Target::Followers(true),
            };
            let before = notif
                .send_alert(SendAlertRequest {
                    story_id: story_id.clone(),
                    audience: Some(Audience {
                        target: Some(target),
                    }),
                    critical,
                })
                .await?
                .into_inner();
            if watch {
                // Handled once a fan-out that started after the request has finished (server
                // times on both sides of the comparison).
                let requested = before.requested_at.map(|t| (t.seconds, t.nanos));
                let at_or_after = move |t: Option<prost_types::Timestamp>| {
                    t.map(|t| (t.seconds, t.nanos)) >= requested && t.is_some()
                };
                watch_alert(&mut notif, &story_id, Some(timeout_secs), json, move |a| {
                    at_or_after(a.latest_started_at) && at_or_after(a.finished_at)
                })
                .await?;
            } else {
                print_alert(&before, json);
            }
        }
        Command::Alert {
            story_id,
            watch,
            timeout_secs,
        } => {
            let mut notif = notification(&cli.notification, cli.token.clone()).await?;
            if watch {
                watch_alert(&mut notif, &story_id, Some(timeout_secs), json, |a| {
                    a.finished_at.is_some()
                })
                .await?;
            } else {
                let a = notif
                    .get_alert(GetAlertRequest {
                        story_id: story_id.clone(),
                    })
                    .await?
                    .into_inner();
                print_alert(&a, json);
            }
        }
        Command::Tail {
            topic,
            from_beginning,
            count,
            timeout_secs,
        } => {
            let from = if from_beginning {
                ops::From::Beginning
            } else {
                ops::From::End
            };
            let brokers = cli.brokers.clone();
            tokio::task::spawn_blocking(move || {
                ops::tail(
                    &brokers,
                    &topic,
                    from,
                    count,
                    timeout_secs.map(Duration::from_secs),
                    |record| print_json(&record),
                )
            })
            .await??;
        }
        Command::Lag {
            group,
            topics,
            topic_prefix,
            max_lag,
        } => {
            let (topics, which) = if topics.is_empty() {
                let all = newsroom_platform::kafka::TOPICS
                    .iter()
                    .map(|t| format!("{topic_prefix}{}", t.name))
                    .collect();
                (all, ops::Topics::Consumed)
            } else {
                (topics, ops::Topics::Named)
            };
            let brokers = cli.brokers.clone();
            let lags = tokio::task::spawn_blocking(move || {
                ops::consumer_lag(&brokers, &group, &topics, which)
            })
            .await??;
            if !json {
                println!(
                    "{:<32} {:<40} {:>9} {:>12} {:>12} {:>8}",
                    "GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"
                );
            }
            for l in &lags {
                if json {
                    print_json(&serde_json::to_value(l)?);
                } else {
                    let committed = l.committed.map_or("-".to_owned(), |c| c.to_string());
                    println!(
                        "{:<32} {:<40} {:>9} {:>12} {:>12} {:>8}",
                        l.group, l.topic, l.partition, committed, l.end, l.lag
                    );
                }
            }
            if let Some(max) = max_lag
                && let Some(l) = lags.iter().find(|l| l.lag > max)
            {
                return Err(LagAbove {
                    topic: l.topic.clone(),
                    partition: l.partition,
                    lag: l.lag,
                    max,
                }
                .into());
            }
        }
        Command::Replay {
            topic,
            partitions,
            from,
            to,
            story,
            dry_run,
            wait,
            group,
            timeout_secs,
        } => {
            let request = ReplayRequest {
                brokers: cli.brokers.clone(),
                source: topic,
                partitions,
                from,
                to,
                story,
                dry_run,
                wait_for_group: wait.then_some(group),
                wait_timeout: Duration::from_secs(timeout_secs),
            };
            let bar = progress::bar(0, !json);
            let report = tokio::task::spawn_blocking({
                let bar = bar.clone();
                move || newsroom_cli::replay::replay(&request, &bar)
            })
            .await?;
            bar.finish_and_clear();
            let report = report?;
            if json {
                print_json(&serde_json::to_value(&report)?);
            } else {
                let written = if report.dry_run {
                    "would replay"
                } else {
                    "replayed"
                };
                println!(
                    "{written} {} of {} records from {} to {}: {} superseded by a newer version, {} skipped",
                    report.replayed,
                    report.read,
                    report.source,
                    report.target,
                    report.superseded,
                    report.skipped
                );
                if let Some(handled) = report.handled {
                    println!(
                        "enrichment handled {handled}; {} new records in the dead-letter topic meanwhile",
                        report.new_in_dlq.unwrap_or_default()
                    );
                }
            }
        }
        Command::Demo {
            data,
            count,
            user,
            webhook,
        } => {
            demo(cli, &data, count, &user, &webhook).await?;
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

/// Notification's client, sending `authorization: Bearer <token>` when a token is given.
type Notification = NotificationServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, BearerToken>,
>;

#[derive(Clone)]
struct BearerToken(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

async fn notification(url: &str, token: Option<String>) -> anyhow::Result<Notification> {
    let token = token
        .map(|t| format!("Bearer {t}").parse())
        .transpose()
        .map_err(|_| anyhow::anyhow!("NEWSROOM_TOKEN / --token: not a valid header value"))?;
    Ok(NotificationServiceClient::with_interceptor(
        channel(url).await?,
        BearerToken(token),
    ))
}

/// Prints an alert's counts as they change until `done` says the fan-out finished; on a
/// terminal (text output) a bar shows the outcomes against the devices targeted instead.
async fn watch_alert(
    notif: &mut Notification,
    story_id: &str,
    timeout_secs: Option<u64>,
    json: bool,
    done: impl Fn(&newsroom_proto::v1::AlertStatus) -> bool,
) -> anyhow::Result<()> {
    let deadline = timeout_secs.map(|t| tokio::time::Instant::now() + Duration::from_secs(t));
    let mut last = None;
    let bar = progress::bar(0, !json);
    loop {
        let answer = notif
            .get_alert(GetAlertRequest {
                story_id: story_id.to_owned(),
            })
            .await;
        let finished = match answer {
            Ok(a) => {
                let a = a.into_inner();
                let suppressed: u64 = a.suppressed.values().sum();
                if !bar.is_hidden() {
                    bar.set_length(a.targeted);
                    bar.set_position(a.sent + a.failed + suppressed);
                    bar.set_message(format!(
                        "sent {} delivered {} failed {} suppressed {suppressed}",
                        a.sent, a.delivered, a.failed
                    ));
                } else if last.as_ref() != Some(&a) {
                    print_alert(&a, json);
                }
                let finished = done(&a);
                last = Some(a);
                finished
            }
            // A story that has not alerted yet: it may be on its way.
            Err(status) if status.code() == tonic::Code::NotFound => false,
            Err(status) => return Err(status.into()),
        };
        if finished {
            if !bar.is_hidden() {
                bar.finish_and_clear();
                if let Some(a) = &last {
                    print_alert(a, json);
                }
            }
            return Ok(());
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            bar.finish_and_clear();
            return Err(OpsError::Timeout(format!(
                "alert {story_id} not finished within {}s",
                timeout_secs.unwrap_or_default()
            ))
            .into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A document from a file, or fetched from an http(s) URL (a non-success status is an error;
/// an unreachable host is exit 69).
async fn read_document(location: &str) -> anyhow::Result<Vec<u8>> {
    if !(location.starts_with("http://") || location.starts_with("https://")) {
        return Ok(std::fs::read(location)?);
    }
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?
        .get(location)
        .send()
        .await
        .map_err(|e| OpsError::Unreachable(format!("{location}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("{location}: HTTP {status}");
    }
    Ok(response.bytes().await?.to_vec())
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
    notif: &mut Notification,
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
    cli: &Globals,
    data: &std::path::Path,
    count: usize,
    user: &str,
    webhook: &str,
) -> anyhow::Result<()> {
    let mut ingest = IngestServiceClient::new(channel(&cli.ingest).await?);
    let mut rec = RecommendationServiceClient::new(channel(&cli.recommendation).await?);
    for topic in ["medtop:13000000", "medtop:11000000", "medtop:04000000"] {
        follow(&mut rec, user, topic).await?;
    }
    eprintln!("{user} follows science and technology, politics, economy");
    if !webhook.is_empty() {
        let mut notif = notification(&cli.notification, cli.token.clone()).await?;
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
    let bar = progress::bar(n as u64, cli.output == Output::Text);
    bar.set_message("submitting BBC stories");
    let mut responses = ingest
        .submit_stories(tokio_stream::iter(stories))
        .await?
        .into_inner();
    let mut accepted = 0;
    while let Some(r) = responses.message().await? {
        bar.inc(1);
        if r.outcome() != newsroom_proto::v1::Outcome::Duplicate {
            accepted += 1;
        }
    }
    bar.finish_and_clear();
    eprintln!("{n} BBC stories submitted ({accepted} new or updated)");

    let flash = Story {
        source: "newsroom-demo".to_owned(),
        // A new flash each run, so the phone rings again on every `just up` (the wording is the
        // same: enrichment puts the runs in one near-duplicate cluster, the feed shows one).
        guid: format!(
            "demo-flash-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ),
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
