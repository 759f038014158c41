//! `newsroom-example-stage`: the example remote stage (readability) as its own process.
//!
//! Listens on `NEWSROOM_STAGE_ADDR` (default 127.0.0.1:50062; port 0 picks a free one) and
//! prints `listening <addr>` once ready, so scripts and tests can find it. Stops on SIGTERM.

use newsroom_platform::config::{EXIT_CONFIG, Env, PlatformConfig};
use newsroom_platform::shutdown::wait_for_signal;

/// Listen address of the example stage. Default 127.0.0.1:50062.
const NEWSROOM_STAGE_ADDR: &str = "NEWSROOM_STAGE_ADDR";

#[tokio::main]
#[allow(clippy::print_stdout)] // the listening line is this tool's contract with its caller
async fn main() -> anyhow::Result<()> {
    let env = Env::process();
    let addr = match env.addr(NEWSROOM_STAGE_ADDR, ([127, 0, 0, 1], 50062).into()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("newsroom-example-stage: configuration error: {e}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    let platform = PlatformConfig::from_env(&env, "example-stage", 0).unwrap_or_else(|e| {
        eprintln!("newsroom-example-stage: configuration error: {e}");
        std::process::exit(EXIT_CONFIG);
    });
    let _telemetry = newsroom_platform::telemetry::init(&platform)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening {}", listener.local_addr()?);
    newsroom_enrichment::remote::serve(
        newsroom_enrichment::remote::Readability,
        listener,
        wait_for_signal(),
    )
    .await?;
    Ok(())
}
