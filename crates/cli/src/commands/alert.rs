//! `newsroom alert`: an alert's counts, once or (`--watch`) each time they change until the
//! fan-out finished. The watching and printing live here; `send-alert --watch` uses them too.

use std::time::Duration;

use newsroom_proto::v1::{AlertStatus, GetAlertRequest};

use super::print_json;
use crate::globals::Notification;
use crate::{Error, Globals, progress};

#[derive(clap::Args)]
pub struct Args {
    story_id: String,
    #[arg(long)]
    watch: bool,
    /// With --watch: give up (exit 75) after this long.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
}

pub async fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    let json = globals.json();
    let mut notif = globals.notification_client().await?;
    if args.watch {
        watch(
            &mut notif,
            &args.story_id,
            Some(args.timeout_secs),
            json,
            |a| a.finished_at.is_some(),
        )
        .await?;
    } else {
        let a = notif
            .get_alert(GetAlertRequest {
                story_id: args.story_id.clone(),
            })
            .await?
            .into_inner();
        print_counts(&a, json);
    }
    Ok(())
}

/// One line of an alert's counts.
pub(crate) fn print_counts(a: &AlertStatus, json: bool) {
    let rfc3339 = |t: Option<prost_types::Timestamp>| {
        t.and_then(|t| {
            chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
                .map(|t| t.to_rfc3339())
        })
    };
    if json {
        print_json(&serde_json::json!({
            "story_id": a.story_id, "version": a.version, "targeted": a.targeted, "sent": a.sent,
            "delivered": a.delivered, "failed": a.failed, "suppressed": a.suppressed,
            "finished_at": rfc3339(a.finished_at), "dry_run": a.dry_run,
            "sealed_until": rfc3339(a.sealed_until),
        }));
    } else {
        if let Some(until) = rfc3339(a.sealed_until) {
            println!(
                "{} is under embargo: the alert is sealed until {until} and sent when the story \
                 is released",
                a.story_id
            );
            return;
        }
        if a.dry_run {
            println!(
                "{} (dry run, nothing sent): would target {} and send to {}; suppressed {:?}",
                a.story_id, a.targeted, a.sent, a.suppressed
            );
            return;
        }
        println!(
            "{}: targeted {} sent {} delivered {} failed {} suppressed {:?}{}",
            a.story_id,
            a.targeted,
            a.sent,
            a.delivered,
            a.failed,
            a.suppressed,
            if a.finished_at.is_some() {
                " (finished)"
            } else {
                ""
            }
        );
    }
}

/// Prints an alert's counts as they change until `done` says the fan-out finished; on a
/// terminal (text output) a bar shows the outcomes against the devices targeted instead.
pub(crate) async fn watch(
    notif: &mut Notification,
    story_id: &str,
    timeout_secs: Option<u64>,
    json: bool,
    done: impl Fn(&AlertStatus) -> bool,
) -> Result<(), Error> {
    let deadline = timeout_secs.map(|t| tokio::time::Instant::now() + Duration::from_secs(t));
    let mut last = None;
    let bar = progress::bar(0, !json);
    // Polls every 500 ms: GetAlert is a cheap read, and a fan-out takes seconds.
    loop {
        let answer = notif
            .get_alert(GetAlertRequest {
                story_id: story_id.to_owned(),
            })
            .await;
        let finished = match answer {
            Ok(a) => {
                let a = a.into_inner();
                let suppressed: u64 = a.suppressed.values().sum();
                if !bar.is_hidden() {
                    bar.set_length(a.targeted);
                    bar.set_position(a.sent + a.failed + suppressed);
                    bar.set_message(format!(
                        "sent {} delivered {} failed {} suppressed {suppressed}",
                        a.sent, a.delivered, a.failed
                    ));
                } else if last.as_ref() != Some(&a) {
                    print_counts(&a, json);
                }
                let finished = done(&a);
                last = Some(a);
                finished
            }
            // A story that has not alerted yet: it may be on its way.
            Err(status) if status.code() == tonic::Code::NotFound => false,
            Err(status) => return Err(status.into()),
        };
        if finished {
            if !bar.is_hidden() {
                bar.finish_and_clear();
                if let Some(a) = &last {
                    print_counts(a, json);
                }
            }
            return Ok(());
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            bar.finish_and_clear();
            return Err(Error::Timeout(format!(
                "alert {story_id} not finished within {}s",
                timeout_secs.unwrap_or_default()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
