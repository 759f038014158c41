//! `newsroom follow`: a user follows an IPTC Media Topic; prints what the user follows now.

use newsroom_proto::v1::{FollowRequest, FollowTarget, TargetKind, UserProfile};

use super::print_json;
use crate::globals::Recommendation;
use crate::{Error, Globals};

#[derive(clap::Args)]
pub struct Args {
    /// The reader; empty with a reader's token (`--token`): the token's reader.
    #[arg(long, default_value = "")]
    user: String,
    /// e.g. medtop:13000000 (science and technology)
    #[arg(long)]
    topic: String,
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let mut rec = globals.recommendation_client().await?;
    let p = follow_topic(&mut rec, &args.user, &args.topic).await?;
    let follows: Vec<String> = p.follows.iter().map(|f| f.value.clone()).collect();
    if globals.json() {
        print_json(&serde_json::json!({"user_id": p.user_id, "follows": follows}));
    } else {
        println!("{} follows {}", p.user_id, follows.join(", "));
    }
    Ok(())
}

/// The user follows the topic; `demo` makes its reader with it too.
pub(crate) async fn follow_topic(
    rec: &mut Recommendation,
    user: &str,
    topic: &str,
) -> Result<UserProfile, Error> {
    Ok(rec
        .follow(FollowRequest {
            user_id: user.to_owned(),
            target: Some(FollowTarget {
                kind: TargetKind::Topic as i32,
                value: topic.to_owned(),
            }),
        })
        .await?
        .into_inner())
}
