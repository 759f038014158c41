//! `newsroom feed`: a user's feed, one line per story with its score and why it is there.

use newsroom_proto::v1::GetFeedRequest;

use super::{item_line, print_json};
use crate::{Error, Globals};

#[derive(clap::Args)]
pub struct Args {
    /// The reader; empty with a reader's token (`--token`): the token's reader.
    #[arg(long, default_value = "")]
    user: String,
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let mut rec = globals.recommendation_client().await?;
    let feed = rec
        .get_feed(GetFeedRequest {
            user_id: args.user,
            limit: args.limit,
            cursor: String::new(),
        })
        .await?
        .into_inner();
    for item in &feed.items {
        let s = item.story.clone().unwrap_or_default();
        if globals.json() {
            print_json(&serde_json::json!({
                "story_id": s.id, "version": s.version, "headline": s.headline,
                "score": item.score, "reasons": item.reasons,
                "topics": item.topics.iter().map(|t| &t.code).collect::<Vec<_>>(),
            }));
        } else {
            println!("{}", item_line(item));
        }
    }
    Ok(())
}
