//! `newsroom-notification`: parse config, start telemetry, run until SIGTERM, drain, flush.

use newsroom_platform::config::{EXIT_CONFIG, Env};
use newsroom_platform::server::Listeners;
use newsroom_platform::shutdown::{Shutdown, wait_for_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = match newsroom_notification::Config::from_env(&Env::process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("newsroom-notification: configuration error: {e}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    let _telemetry = newsroom_platform::telemetry::init(&config.platform)?;
    let listeners = Listeners::bind(&config.platform).await?;
    let shutdown = Shutdown::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            wait_for_signal().await;
            shutdown.trigger();
        }
    });
    newsroom_notification::run(config, listeners, shutdown).await?;
    Ok(())
}
