//! `newsroom submit` (alias `import`): a story or feed document, from a file or fetched once
//! from an http(s) URL, imported through ingest; one line per story and per refused item.

use std::time::Duration;

use newsroom_proto::v1::{ImportFeedRequest, ImportFeedResponse, SubmitStoryResponse};

use super::print_json;
use crate::{Error, Globals};

#[derive(clap::Args)]
pub struct Args {
    /// A file, or an http:// or https:// URL.
    file: String,
    /// Format hint: rss, atom, jsonfeed, ninjs, newsml-g2 (default: detect).
    #[arg(long, default_value = "")]
    format: String,
    /// The source the story is submitted for.
    #[arg(long, default_value = "cms")]
    source: String,
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let json = globals.json();
    let document = read_document(&args.file).await?;
    let mut ingest = globals.ingest_client().await?;
    let imported = import(&mut ingest, document, &args.format, &args.source).await?;
    for r in &imported.results {
        if json {
            print_json(&serde_json::json!({
                "story_id": r.story_id, "version": r.version, "outcome": outcome_name(r),
            }));
        } else {
            println!("{} v{} {}", r.story_id, r.version, outcome_name(r));
        }
    }
    for e in &imported.errors {
        if json {
            print_json(&serde_json::json!({
                "index": e.index, "guid": e.guid, "field": e.field, "error": e.reason,
            }));
        } else {
            eprintln!("item {} ({}): {}: {}", e.index, e.guid, e.field, e.reason);
        }
    }
    if imported.results.is_empty() && !imported.errors.is_empty() {
        return Err(Error::NothingImported);
    }
    Ok(())
}

/// A document from a file, or fetched from an http(s) URL (a non-success status is an error;
/// an unreachable host is exit 69).
async fn read_document(location: &str) -> Result<Vec<u8>, Error> {
    if !(location.starts_with("http://") || location.starts_with("https://")) {
        return Ok(std::fs::read(location)?);
    }
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?
        .get(location)
        .send()
        .await
        .map_err(|e| Error::Unreachable(format!("{location}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::Fetch {
            location: location.to_owned(),
            status,
        });
    }
    Ok(response.bytes().await?.to_vec())
}

/// Imports one document (a single story or a feed) through ingest; `demo` loads its seed story
/// with it too.
pub(crate) async fn import(
    ingest: &mut crate::globals::Ingest,
    document: Vec<u8>,
    format: &str,
    source: &str,
) -> Result<ImportFeedResponse, Error> {
    Ok(ingest
        .import_feed(ImportFeedRequest {
            document,
            format: format.to_owned(),
            source: source.to_owned(),
        })
        .await?
        .into_inner())
}

/// The outcome's proto name (`OUTCOME_ACCEPTED` …), as scripts read it.
pub(crate) fn outcome_name(r: &SubmitStoryResponse) -> &'static str {
    r.outcome().as_str_name()
}
