//! `newsroom`: the command line for editors and operators.
//!
//! Parses the arguments, runs the command ([`newsroom_cli::run`]), and on failure prints the
//! error with its causes and exits with its code ([`newsroom_cli::Error::exit_code`]):
//! 0 success, 1 the service answered with an error, 2 bad usage (clap, or a topic `replay`
//! cannot read), 3 `lag --max-lag` exceeded, 66 an input file or topic is missing
//! (EX_NOINPUT), 69 a service or Kafka could not be reached (EX_UNAVAILABLE), 75
//! `--timeout-secs` passed before the command was done (EX_TEMPFAIL: try again).

use std::error::Error as _;

use clap::Parser as _;
use newsroom_cli::error::EX_OK;
use newsroom_cli::{Cli, run};

#[tokio::main]
async fn main() {
    let code = match run(Cli::parse()).await {
        Ok(()) => EX_OK,
        Err(e) => {
            // The error, then each cause, on one line.
            let mut line = format!("newsroom: {e}");
            let mut cause = e.source();
            while let Some(c) = cause {
                line.push_str(&format!(": {c}"));
                cause = c.source();
            }
            eprintln!("{line}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
