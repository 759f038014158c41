//! `newsroom-enrichment`: parse config, start telemetry, run until SIGTERM, drain, flush.
//! `newsroom-enrichment replay` re-runs the current pipeline over `stories.enriched`.

use clap::{Parser, Subcommand};
use newsroom_platform::config::{EXIT_CONFIG, Env};
use newsroom_platform::server::Listeners;
use newsroom_platform::shutdown::{Shutdown, wait_for_signal};

#[derive(Parser)]
#[command(about = "Newsroom enrichment: stories.raw → pipeline of stages → stories.enriched")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Re-run the current pipeline over every story in stories.enriched and republish it.
    Replay {
        /// Enrich but publish nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = match newsroom_enrichment::Config::from_env(&Env::process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("newsroom-enrichment: configuration error: {e}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    let _telemetry = newsroom_platform::telemetry::init(&config.platform)?;
    if let Some(Command::Replay { dry_run }) = cli.command {
        let options = newsroom_enrichment::replay::ReplayOptions { dry_run };
        let report = newsroom_enrichment::replay::replay(&config, &options).await?;
        eprintln!(
            "replay: {} republished, {} skipped, {} failed",
            report.republished, report.skipped, report.failed
        );
        return Ok(());
    }
    let listeners = Listeners::bind(&config.platform).await?;
    let shutdown = Shutdown::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            wait_for_signal().await;
            shutdown.trigger();
        }
    });
    newsroom_enrichment::run(config, listeners, shutdown).await?;
    Ok(())
}
