//! The `newsroom` command line, as a library so that tests and the demo share its pieces.
//!
//! - [`ninjs`] — a NINJS 1.x/2.0 document → `Story` (the seed story is NINJS);
//! - [`bbc`] — the BBC News sample (`bbc-news.jsonl`) → `Story`s;
//! - [`sink`] — a phone-like webhook endpoint that prints (and keeps) the alerts it receives.

pub mod bbc;
pub mod ninjs;
pub mod sink;
