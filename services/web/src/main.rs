//! `newsroom-web`: parse config, start telemetry, serve pages and the API until SIGTERM.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    newsroom_platform::service::main("newsroom-web", newsroom_web::run).await
}
