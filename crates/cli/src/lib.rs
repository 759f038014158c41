//! The `newsroom` command line, as a library so that tests and the demo share its pieces.
//!
//! - [`bbc`] — the BBC News sample (`bbc-news.jsonl`) → `Story`s;
//! - [`ops`] — operator commands reading Kafka: `tail` (records as JSON), `lag` (per partition);
//! - [`replay`] — a range of a story topic sent back through enrichment;
//! - [`progress`] — progress bars on long operations (a terminal and text output only);
//! - [`sink`] — a phone-like webhook endpoint that prints (and keeps) the alerts it receives.

pub mod bbc;
pub mod ops;
pub mod progress;
pub mod replay;
pub mod sink;
