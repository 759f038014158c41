//! `newsroom related`: a story's related stories, as its story page lists them — the same news
//! event first, then the stories nearest in meaning (recommendation's `GetRelated`).

use newsroom_proto::v1::GetRelatedRequest;

use super::{item_line, print_json};
use crate::{Error, Globals};

#[derive(clap::Args)]
pub struct Args {
    /// The story's id.
    story_id: String,
    /// 1 to 20.
    #[arg(long, default_value_t = 5)]
    limit: u32,
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let mut rec = globals.recommendation_client().await?;
    let related = rec
        .get_related(GetRelatedRequest {
            story_id: args.story_id,
            limit: args.limit,
        })
        .await?
        .into_inner();
    if related.items.is_empty() && !globals.json() {
        println!("(no related story within two days of it)");
    }
    for item in &related.items {
        let s = item.story.clone().unwrap_or_default();
        if globals.json() {
            print_json(&serde_json::json!({
                "story_id": s.id, "headline": s.headline,
                "similarity": item.score, "reasons": item.reasons,
            }));
        } else {
            println!("{}", item_line(item));
        }
    }
    Ok(())
}
