//! `newsroom-recommendation`: parse config, start telemetry, run until SIGTERM, drain, flush.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    newsroom_platform::service::main("newsroom-recommendation", newsroom_recommendation::run).await
}
