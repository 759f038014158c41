//! `newsroom-enrichment`: parse config, start telemetry, run until SIGTERM, drain, flush.
//! `newsroom-enrichment replay` re-runs the current pipeline over `stories.enriched`.

use clap::{Parser, Subcommand};

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
async fn main() -> std::process::ExitCode {
    const BINARY: &str = "newsroom-enrichment";
    let cli = Cli::parse();
    if let Some(Command::Replay { dry_run }) = cli.command {
        return newsroom_platform::service::exit_code(BINARY, replay(dry_run).await);
    }
    newsroom_platform::service::main(BINARY, newsroom_enrichment::run).await
}

async fn replay(dry_run: bool) -> Result<(), newsroom_platform::service::BoxError> {
    let config: newsroom_enrichment::Config =
        newsroom_platform::service::config_or_exit("newsroom-enrichment");
    let _telemetry = newsroom_platform::telemetry::init(&config.platform)?;
    let options = newsroom_enrichment::replay::ReplayOptions { dry_run };
    let report = newsroom_enrichment::replay::replay(&config, &options).await?;
    eprintln!(
        "replay: {} republished, {} skipped, {} failed",
        report.republished, report.skipped, report.failed
    );
    Ok(())
}
