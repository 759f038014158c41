//! The `newsroom` command line, as a library: `main.rs` parses, calls [`run`] and turns the
//! [`Error`] into the exit code; tests and the demo share the pieces.
//!
//! - [`commands`] — the command line ([`Cli`]) and one module per command: its arguments and
//!   its `run`;
//! - [`globals`] — the options every command takes, and the services' gRPC clients;
//! - [`error`] — why a command failed, and the exit code for each case;
//! - [`ops`] — reading Kafka for `tail` (records as JSON) and `lag` (per partition);
//! - [`replay`] — a range of a story topic sent back through enrichment;
//! - [`bbc`] — the BBC News sample (`bbc-news.jsonl`) → `Story`s;
//! - [`progress`] — progress bars on long operations (a terminal and text output only);
//! - [`sink`] — a phone-like webhook endpoint that prints (and keeps) the alerts it receives.

pub mod bbc;
pub mod commands;
pub mod error;
pub mod globals;
pub mod ops;
pub mod progress;
pub mod replay;
pub mod sink;

pub use commands::{Cli, run};
pub use error::Error;
pub use globals::{Globals, Output};
