//! `newsroom send-alert`: an editor's alert for a story (followers, everyone or a segment),
//! then with `--watch` its counts until a fan-out that started after the request finished.

use newsroom_proto::v1::audience::Target;
use newsroom_proto::v1::{Audience, SendAlertRequest};

use super::alert;
use crate::{Error, Globals};

#[derive(clap::Args)]
pub struct Args {
    story_id: String,
    /// Every registered device, not only the followers of the story's topics and entities.
    #[arg(long, conflicts_with = "segment")]
    everyone: bool,
    /// A segment configured on notification (NEWSROOM_SEGMENTS).
    #[arg(long)]
    segment: Option<String>,
    /// Through quiet hours and daily budgets (not through opt-outs and languages).
    #[arg(long)]
    critical: bool,
    /// Decide and resolve the audience, send nothing: print what the alert would do now.
    #[arg(long, conflicts_with = "watch")]
    dry_run: bool,
    /// A routine alert's window: devices not sent to within it are skipped, never alerted late.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    expires_after_secs: Option<u64>,
    #[arg(long)]
    watch: bool,
    /// With --watch: give up (exit 75) after this long.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let json = globals.json();
    let mut notif = globals.notification_client().await?;
    let target = match (args.everyone, args.segment) {
        (true, _) => Target::Everyone(true),
        (false, Some(name)) => Target::Segment(name),
        (false, None) => Target::Followers(true),
    };
    let before = notif
        .send_alert(SendAlertRequest {
            story_id: args.story_id.clone(),
            audience: Some(Audience {
                target: Some(target),
            }),
            critical: args.critical,
            dry_run: args.dry_run,
            expires_after: args.expires_after_secs.map(|s| {
                std::time::Duration::from_secs(s)
                    .try_into()
                    .unwrap_or_default()
            }),
        })
        .await?
        .into_inner();
    if args.watch {
        // Handled once a fan-out that started after the request has finished (server
        // times on both sides of the comparison).
        let requested = before.requested_at.map(|t| (t.seconds, t.nanos));
        let at_or_after = move |t: Option<prost_types::Timestamp>| {
            t.map(|t| (t.seconds, t.nanos)) >= requested && t.is_some()
        };
        alert::watch(
            &mut notif,
            &args.story_id,
            Some(args.timeout_secs),
            json,
            move |a| at_or_after(a.latest_started_at) && at_or_after(a.finished_at),
        )
        .await?;
    } else {
        alert::print_counts(&before, json);
    }
    Ok(())
}
