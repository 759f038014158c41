//! The `newsroom` command line, as a library so that tests and the demo share its pieces.
//!
//! - [`bbc`] — the BBC News sample (`bbc-news.jsonl`) → `Story`s;
//! - [`ops`] — operator commands reading Kafka: `tail` (records as JSON), `lag` (per partition);
//! - [`sink`] — a phone-like webhook endpoint that prints (and keeps) the alerts it receives.

pub mod bbc;
pub mod ops;
pub mod sink;
