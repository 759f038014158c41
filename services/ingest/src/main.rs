//! `newsroom-ingest`: parse config, start telemetry, run until SIGTERM, drain, flush.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    newsroom_platform::service::main("newsroom-ingest", newsroom_ingest::run).await
}
