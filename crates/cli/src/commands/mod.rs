//! The commands of `newsroom`: one file each, holding its arguments (a `clap::Args` struct)
//! and its `run`. This file is the command line itself ([`Cli`]) and the dispatch.
//!
//! Editors:
//! - [`submit`] (alias `import`) — a story or feed from a file or an http(s) URL;
//! - [`follow`] — a user follows an IPTC Media Topic;
//! - [`feed`] — a user's feed;
//! - [`related`] — a story's related stories (its story page's list);
//! - [`register_webhook`] — a webhook device for a user;
//! - [`send_alert`] — an editor's alert, watched until its fan-out finished;
//! - [`alert`] — an alert's counts, watched or not;
//! - [`demo`] — the demo reader, the seed story, BBC stories, one flash;
//! - [`webhook_sink`] — a phone that prints the alerts it receives;
//! - [`token`] — a development JWT (reader, editor, service …) for the local stack.
//! - [`canary`] — the end-to-end probe: a canary flash every N seconds, its alert latency as
//!   metrics;
//! - [`stage`] — `stage new`: a WebAssembly enrichment stage from a template (Python, JS, Go).
//!
//! Operators (Kafka directly):
//! - [`tail`] — a topic's records as JSON;
//! - [`lag`] — a consumer group's lag per partition;
//! - [`replay`] — a range of a story topic back through enrichment.
//!
//! A command's result is its standard output (hence `print_stdout` allowed here, and only
//! here); notes for the person at the terminal go to standard error.

#![allow(clippy::print_stdout)]

use clap::{Parser, Subcommand};

use crate::{Error, Globals};

pub mod alert;
pub mod canary;
pub mod demo;
pub mod feed;
pub mod follow;
pub mod lag;
pub mod register_webhook;
pub mod related;
pub mod replay;
pub mod send_alert;
pub mod stage;
pub mod submit;
pub mod tail;
pub mod token;
pub mod webhook_sink;

/// The command line: the global options, then one command.
#[derive(Parser)]
#[command(
    name = "newsroom",
    version,
    about = "Editors' and operators' command line for Newsroom",
    after_help = "Exit codes: 0 ok; 1 the service answered with an error; 2 bad usage (or a topic replay cannot read); 3 lag above --max-lag; 66 missing file or topic; 69 service or Kafka unreachable; 75 timed out."
)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

// The variants' docs are the commands' one-line help (and `replay`'s long help): the argument
// structs carry none, so there is one place that says what a command does.
#[derive(Subcommand)]
pub enum Command {
    /// Import a story or feed (RSS, Atom, JSON Feed, NINJS, NewsML-G2; detected) from a file,
    /// or from an http(s) URL, fetched once.
    #[command(visible_alias = "import")]
    Submit(submit::Args),
    /// Follow an IPTC Media Topic for a user.
    Follow(follow::Args),
    /// Show a user's feed.
    Feed(feed::Args),
    /// Show a story's related stories: the same event first, then the nearest in meaning.
    Related(related::Args),
    /// Register a webhook device for a user.
    RegisterWebhook(register_webhook::Args),
    /// Send an editor's alert for a story (needs the editor role), then with --watch follow
    /// its counts until the fan-out finished.
    SendAlert(send_alert::Args),
    /// Show an alert's counts; with --watch, print them each time they change until the
    /// fan-out finished.
    Alert(alert::Args),
    /// Print a topic's records decoded to JSON, one per line (full topic name, prefix included).
    Tail(tail::Args),
    /// Show a consumer group's lag per partition (committed offset to partition end).
    Lag(lag::Args),
    /// Send a range of a story topic back through enrichment.
    ///
    /// Each story is written to stories.raw again (same key, version and accepted_at) and enriched by the pipeline
    /// enrichment runs now. Reads stories.raw, stories.raw.dlq, stories.enriched or
    /// stories.enriched.dlq (full name, prefix included); a version older than the story's
    /// latest is not written back.
    Replay(replay::Args),
    /// Load the demo: a reader who follows three topics, a webhook phone, the seed story, BBC
    /// stories and one flash story.
    Demo(demo::Args),
    /// A phone-like webhook endpoint that prints each alert it receives as a JSON line.
    WebhookSink(webhook_sink::Args),
    /// The end-to-end probe: a canary flash every --every-secs to the canary user's own phone,
    /// its alert latency and failures as Prometheus metrics.
    Canary(canary::Args),
    /// Mint a development JWT (signed by the local key that services in `local` auth mode
    /// trust): `--sub alice` for a reader, `--role editor`, `--role service` …
    Token(token::Args),
    /// WebAssembly enrichment stages: `stage new --lang python|js|go NAME` starts one from a
    /// template that builds and tests out of the box.
    Stage(stage::Args),
}

/// Runs the command; the error says which exit code the process ends with.
pub async fn run(Cli { globals, command }: Cli) -> Result<(), Error> {
    let globals = &globals;
    match command {
        Command::Submit(args) => submit::run(args, globals).await,
        Command::Follow(args) => follow::run(args, globals).await,
        Command::Feed(args) => feed::run(args, globals).await,
        Command::Related(args) => related::run(args, globals).await,
        Command::RegisterWebhook(args) => register_webhook::run(args, globals).await,
        Command::SendAlert(args) => send_alert::run(args, globals).await,
        Command::Alert(args) => alert::run(args, globals).await,
        Command::Tail(args) => tail::run(args, globals).await,
        Command::Lag(args) => lag::run(args, globals).await,
        Command::Replay(args) => replay::run(args, globals).await,
        Command::Demo(args) => demo::run(args, globals).await,
        Command::WebhookSink(args) => webhook_sink::run(args).await,
        Command::Canary(args) => canary::run(args, globals).await,
        Command::Token(args) => token::run(args, globals),
        Command::Stage(args) => stage::run(args),
    }
}

/// A feed card as one line for a person: score, headline, reasons (`feed`, `related`).
fn item_line(item: &newsroom_proto::v1::FeedItem) -> String {
    let headline = item.story.as_ref().map_or("", |s| s.headline.as_str());
    format!(
        "{:.2}  {headline}  [{}]",
        item.score,
        item.reasons.join("; ")
    )
}

/// One result as a JSON line.
fn print_json(v: &serde_json::Value) {
    println!("{v}");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        // Conflicting names, a global option shadowed by a command's, a bad default: clap
        // finds them here rather than at a user's first run.
        Cli::command().debug_assert();
    }

    #[test]
    fn import_is_submit_and_options_go_before_or_after_the_command() {
        let cli = Cli::try_parse_from(["newsroom", "import", "feed.xml", "--output", "json"])
            .expect("parses");
        assert!(cli.globals.json());
        assert!(matches!(cli.command, Command::Submit(_)));
        let err = Cli::try_parse_from([
            "newsroom",
            "send-alert",
            "s1",
            "--everyone",
            "--segment",
            "x",
        ])
        .err()
        .expect("--everyone and --segment conflict");
        assert_eq!(err.exit_code(), 2);
    }
}
