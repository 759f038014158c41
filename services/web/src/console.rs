//! The editors' console: the live wire (stories arriving with their enrichment, filterable by
//! topic), the enrichment pipeline as it runs, and alerts — previewed before they go (a dry run:
//! the audience per outcome and what quiet hours, budgets and language will hold back), sent,
//! followed live until the fan-out finishes. An alert whose audience is above
//! `NEWSROOM_WEB_APPROVAL_AUDIENCE` devices needs a second editor: the first gets a link, signed
//! by web's key and valid 30 minutes, that only another editor can use to send it.

use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::SignedCookieJar;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use minijinja::context;
use newsroom_proto::v1::{
    Audience, GetAlertRequest, GetWireRequest, ListStagesRequest, SendAlertRequest, audience,
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::WebError;
use crate::pages::{PageError, PageResult, render, signed_in};
use crate::session::Session;
use crate::state::AppState;
use crate::views;

/// How long a second editor has to approve a large alert.
pub const APPROVAL_SECS: i64 = 30 * 60;

fn editor(jar: &SignedCookieJar) -> Result<Session, PageError> {
    let s = signed_in(jar)?;
    if !s.editor {
        return Err(WebError::Forbidden("the console is for editors").into());
    }
    Ok(s)
}

/// One row of the wire.
#[derive(Serialize)]
struct WireRow {
    card: views::StoryView,
    cluster_stories: u32,
    cluster_sources: u32,
}

async fn wire_rows(state: &AppState, topic: &str) -> Result<Vec<WireRow>, WebError> {
    let wire = state
        .editor_recommendation()?
        .get_wire(GetWireRequest {
            limit: 30,
            topic: topic.to_owned(),
            cursor: String::new(),
        })
        .await?
        .into_inner();
    Ok(wire
        .items
        .iter()
        .filter_map(|i| {
            let card = views::story(i.story.as_ref()?)?;
            Some(WireRow {
                card,
                cluster_stories: i.developing.as_ref().map_or(1, |d| d.stories),
                cluster_sources: i.developing.as_ref().map_or(1, |d| d.sources),
            })
        })
        .collect())
}

#[derive(Deserialize)]
pub struct WireQuery {
    #[serde(default)]
    topic: String,
}

pub async fn console(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Query(q): Query<WireQuery>,
) -> PageResult {
    let session = editor(&jar)?;
    let rows = wire_rows(&state, q.topic.trim()).await?;
    let stages = state
        .editor_enrichment()?
        .list_stages(ListStagesRequest {})
        .await
        .map(|r| r.into_inner())
        .ok();
    let topics: Vec<(&str, &str)> = newsroom_proto::media_topics::TOP_LEVEL
        .iter()
        .map(|(code, label)| (*code, *label))
        .collect();
    render(
        &state,
        "console.html",
        Some(&session),
        "console",
        context! {
            rows, topic => q.topic, topics,
            pipeline => stages.as_ref().map(|s| context! {
                id => s.pipeline_id.clone(), source => s.source.clone(),
                reloads_applied => s.reloads_applied, reloads_rejected => s.reloads_rejected,
            }),
            stages => stages.map(|s| s.stages.into_iter().map(|st| context! {
                name => st.name, kind => st.kind, timeout_ms => st.timeout_ms, on_error => st.on_error,
                wave => st.wave, enabled => st.enabled, attempts => st.attempts_run,
                errors => st.errors, failures => st.failures, p50_us => st.p50_us, p99_us => st.p99_us,
            }).collect::<Vec<_>>()).unwrap_or_default(),
        },
    )
}

pub async fn wire(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Query(q): Query<WireQuery>,
) -> PageResult {
    let session = editor(&jar)?;
    let rows = wire_rows(&state, q.topic.trim()).await?;
    render(
        &state,
        "_wire.html",
        Some(&session),
        "console",
        context! { rows },
    )
}

/// An alert as the console's form asks for it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct AlertForm {
    story_id: String,
    /// everyone, followers or segment.
    audience: String,
    #[serde(default)]
    segment: String,
    #[serde(default)]
    critical: Option<String>,
    /// A second editor's approval link's token.
    #[serde(default)]
    approval: String,
}

impl AlertForm {
    fn request(&self, dry_run: bool) -> Result<SendAlertRequest, WebError> {
        let story_id = self.story_id.trim();
        if story_id.is_empty() {
            return Err(WebError::invalid("story_id", "required"));
        }
        let target = match self.audience.as_str() {
            "everyone" => audience::Target::Everyone(true),
            "followers" => audience::Target::Followers(true),
            "segment" if !self.segment.trim().is_empty() => {
                audience::Target::Segment(self.segment.trim().to_owned())
            }
            "segment" => return Err(WebError::invalid("segment", "required for a segment")),
            _ => {
                return Err(WebError::invalid(
                    "audience",
                    "expected everyone, followers or segment",
                ));
            }
        };
        Ok(SendAlertRequest {
            story_id: story_id.to_owned(),
            audience: Some(Audience {
                target: Some(target),
            }),
            critical: self.critical.is_some(),
            dry_run,
            expires_after: None,
        })
    }

    /// What an approval vouches for: everything but the approval itself.
    fn payload(&self, requested_by: &str, expires_at: i64) -> String {
        format!(
            "{}|{}|{}|{}|{requested_by}|{expires_at}",
            self.story_id.trim(),
            self.audience,
            self.segment.trim(),
            self.critical.is_some()
        )
    }
}

type HmacSha256 = Hmac<Sha256>;

fn sign(state: &AppState, payload: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(state.key.signing()).expect("any key length");
    mac.update(payload.as_bytes());
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// The payload of a token this deployment signed, if it did.
fn verify(state: &AppState, token: &str) -> Option<String> {
    let (p, m) = token.split_once('.')?;
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    let mut mac = HmacSha256::new_from_slice(state.key.signing()).ok()?;
    mac.update(payload.as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(m).ok()?).ok()?;
    Some(payload)
}

/// Devices an alert would go to (targeted less held back), from a dry run.
fn audience_of(status: &newsroom_proto::v1::AlertStatus) -> u64 {
    status.sent
}

/// A dry run's predicted time to 90 % sent, with the pace it comes from.
fn prediction(status: &newsroom_proto::v1::AlertStatus) -> Option<String> {
    let d = status.predicted_time_to_90_percent_sent?;
    let secs = d.seconds as f64 + f64::from(d.nanos) / 1e9;
    let time = if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else {
        format!("{secs:.1} s")
    };
    let runs = match status.recent_fanouts {
        1 => "the last fan-out".to_owned(),
        n => format!("the last {n} fan-outs"),
    };
    Some(format!(
        "{time} at {:.0} devices a second, the pace of {runs}",
        status.recent_sends_per_second
    ))
}

pub async fn preview(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Form(form): Form<AlertForm>,
) -> PageResult {
    let session = editor(&jar)?;
    let status = state
        .editor_notification()?
        .send_alert(form.request(true)?)
        .await?
        .into_inner();
    let reach = audience_of(&status);
    let needs_approval = reach > state.config.approval_audience;
    let approval_url = needs_approval.then(|| {
        let expires = chrono::Utc::now().timestamp() + APPROVAL_SECS;
        let token = sign(&state, &form.payload(&session.user, expires));
        format!("/console/approve?token={token}")
    });
    render(
        &state,
        "_alert.html",
        Some(&session),
        "console",
        context! {
            form => form,
            preview => true,
            targeted => status.targeted,
            reach,
            suppressed => status.suppressed,
            by_channel => status.sent_by_channel,
            predicted => prediction(&status),
            needs_approval,
            approval_url,
            threshold => state.config.approval_audience,
        },
    )
}

#[derive(Deserialize)]
pub struct ApproveQuery {
    token: String,
}

/// The approval page a second editor opens from the link.
pub async fn approve_page(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Query(q): Query<ApproveQuery>,
) -> PageResult {
    let session = editor(&jar)?;
    let (form, requested_by) = approval(&state, &q.token, &session)?;
    let status = state
        .editor_notification()?
        .send_alert(form.request(true)?)
        .await?
        .into_inner();
    render(
        &state,
        "approve.html",
        Some(&session),
        "console",
        context! {
            form => AlertForm { approval: q.token.clone(), ..form },
            preview => true,
            approving => true,
            requested_by,
            targeted => status.targeted,
            reach => audience_of(&status),
            suppressed => status.suppressed,
            by_channel => status.sent_by_channel,
            predicted => prediction(&status),
        },
    )
}

/// The alert an approval token asks for and who asked, if it is valid for this editor.
fn approval(
    state: &AppState,
    token: &str,
    approver: &Session,
) -> Result<(AlertForm, String), WebError> {
    let payload = verify(state, token)
        .ok_or_else(|| WebError::invalid("approval", "not a valid approval link"))?;
    let parts: Vec<&str> = payload.split('|').collect();
    let [story_id, audience, segment, critical, requested_by, expires] = parts[..] else {
        return Err(WebError::invalid("approval", "not a valid approval link"));
    };
    if expires.parse::<i64>().unwrap_or(0) < chrono::Utc::now().timestamp() {
        return Err(WebError::invalid(
            "approval",
            "this approval link has expired",
        ));
    }
    if requested_by == approver.user {
        return Err(WebError::Forbidden(
            "a second editor must approve: the editor who asked cannot",
        ));
    }
    Ok((
        AlertForm {
            story_id: story_id.to_owned(),
            audience: audience.to_owned(),
            segment: segment.to_owned(),
            critical: (critical == "true").then(|| "on".to_owned()),
            approval: String::new(),
        },
        requested_by.to_owned(),
    ))
}

pub async fn send(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Form(form): Form<AlertForm>,
) -> PageResult {
    let session = editor(&jar)?;
    let mut notif = state.editor_notification()?;
    if form.approval.is_empty() {
        let dry = notif.send_alert(form.request(true)?).await?.into_inner();
        if audience_of(&dry) > state.config.approval_audience {
            return Err(WebError::Forbidden(
                "this alert's audience needs a second editor's approval: send the approval link",
            )
            .into());
        }
    } else {
        let (approved, _) = approval(&state, &form.approval, &session)?;
        let asked = AlertForm {
            approval: String::new(),
            ..form.clone()
        };
        if approved != asked {
            return Err(WebError::invalid("approval", "the approval is for another alert").into());
        }
    }
    let status = notif.send_alert(form.request(false)?).await?.into_inner();
    let approved = !form.approval.is_empty();
    tracing::info!(
        target: "newsroom::audit",
        story_id = %status.story_id, editor = %session.user, approved,
        "alert sent from the console"
    );
    status_fragment(&state, &session, &status.story_id).await
}

async fn status_fragment(state: &AppState, session: &Session, story_id: &str) -> PageResult {
    // A sent alert is a request on a topic: until its fan-out starts, notification knows no
    // status for it, and the console shows it queued.
    let s = match state
        .editor_notification()?
        .get_alert(GetAlertRequest {
            story_id: story_id.to_owned(),
        })
        .await
    {
        Ok(s) => s.into_inner(),
        Err(e) if e.code() == tonic::Code::NotFound => newsroom_proto::v1::AlertStatus {
            story_id: story_id.to_owned(),
            ..Default::default()
        },
        Err(e) => return Err(e.into()),
    };
    let secs = |d: Option<prost_types::Duration>| {
        d.map(|d| format!("{:.1} s", d.seconds as f64 + f64::from(d.nanos) / 1e9))
    };
    render(
        state,
        "_alert.html",
        Some(session),
        "console",
        context! {
            status => context! {
                story_id => s.story_id,
                targeted => s.targeted, sent => s.sent, delivered => s.delivered,
                failed => s.failed, suppressed => s.suppressed, opened => s.opened,
                corrected => s.corrected, retracted => s.retracted,
                done => s.finished_at.is_some(),
                time_to_first_send => secs(s.time_to_first_send),
                time_to_90 => secs(s.time_to_90_percent_sent),
            },
        },
    )
}

pub async fn alert_status(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let session = editor(&jar)?;
    Ok(status_fragment(&state, &session, &id)
        .await?
        .into_response())
}

#[derive(Deserialize)]
pub struct CorrectForm {
    headline: String,
}

/// The story as ingest has it, for a new version of it.
async fn current_story(state: &AppState, id: &str) -> Result<newsroom_proto::v1::Story, WebError> {
    state
        .editor_recommendation()?
        .get_story(newsroom_proto::v1::GetStoryRequest {
            story_id: id.to_owned(),
        })
        .await?
        .into_inner()
        .story
        .ok_or_else(|| WebError::NotFound(format!("story {id}")))
}

async fn resubmit(state: &AppState, story: newsroom_proto::v1::Story) -> Result<(), WebError> {
    state
        .editor_ingest()?
        .submit_story(newsroom_proto::v1::SubmitStoryRequest {
            story: Some(story),
            idempotency_key: String::new(),
        })
        .await?;
    Ok(())
}

/// A corrected headline: a new version with `signal = CORRECTION`, which replaces the alert on
/// the devices alerted recently (through their provider's collapse id) and the story everywhere.
pub async fn correct(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Path(id): Path<String>,
    Form(form): Form<CorrectForm>,
) -> Result<Response, PageError> {
    let session = editor(&jar)?;
    let headline = form.headline.trim();
    if headline.is_empty() || headline.len() > 500 {
        return Err(WebError::invalid("headline", "expected 1 to 500 characters").into());
    }
    let mut story = current_story(&state, &id).await?;
    story.headline = headline.to_owned();
    story.signal = newsroom_proto::v1::Signal::Correction as i32;
    story.version = 0;
    resubmit(&state, story).await?;
    tracing::info!(target: "newsroom::audit", story_id = %id, editor = %session.user, "story corrected from the console");
    Ok(axum::response::Redirect::to(&format!("/story/{id}?corrected=1")).into_response())
}

/// Kills a story: a new version with `pubstatus = CANCELED`; it leaves every feed and index at
/// once, never alerts, and the alert it sent is withdrawn from the phones it reached.
pub async fn kill(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let session = editor(&jar)?;
    let mut story = current_story(&state, &id).await?;
    story.pubstatus = newsroom_proto::v1::PubStatus::Canceled as i32;
    story.version = 0;
    resubmit(&state, story).await?;
    tracing::info!(target: "newsroom::audit", story_id = %id, editor = %session.user, "story killed from the console");
    Ok(axum::response::Redirect::to("/console").into_response())
}

/// Recalls the alert a story sent: notification withdraws it from the phones it reached,
/// through the same collapse id ("Withdrawn: …"); the story itself stays.
pub async fn retract(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let session = editor(&jar)?;
    state
        .editor_notification()?
        .retract_alert(newsroom_proto::v1::RetractAlertRequest {
            story_id: id.clone(),
        })
        .await?;
    tracing::info!(target: "newsroom::audit", story_id = %id, editor = %session.user, "alert withdrawn from the console");
    Ok(axum::response::Redirect::to(&format!("/story/{id}?retracted=1")).into_response())
}

/// The newest dead letters shown per queue.
const DEAD_LETTERS_SHOWN: u32 = 20;

#[derive(Deserialize)]
pub struct DeadLettersQuery {
    #[serde(default)]
    replayed: String,
}

/// The four services' dead-letter queues (their `DeadLetterService`), asked at once; a service
/// that does not answer is shown as such, the others still are.
pub async fn dead_letters(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Query(q): Query<DeadLettersQuery>,
) -> PageResult {
    let session = editor(&jar)?;
    let asks = crate::state::SERVICES.iter().map(|name| {
        let state = state.clone();
        async move {
            let answer = match state.dead_letters(name) {
                Ok(mut client) => client
                    .list_dead_letters(newsroom_proto::v1::ListDeadLettersRequest {
                        topic: String::new(),
                        limit: DEAD_LETTERS_SHOWN,
                    })
                    .await
                    .map(|r| r.into_inner())
                    .map_err(|e| e.message().to_owned()),
                Err(e) => Err(e.to_string()),
            };
            match answer {
                Ok(r) => context! {
                    name, error => None::<String>,
                    queues => r.queues.iter().map(|q| context! { topic => q.topic, depth => q.depth }).collect::<Vec<_>>(),
                    letters => r.dead_letters.iter().map(|l| context! {
                        topic => l.topic, partition => l.partition, offset => l.offset, key => l.key,
                        source_topic => l.source_topic, source_partition => l.source_partition,
                        source_offset => l.source_offset, error => l.error, attempts => l.attempts,
                        value_dropped => l.value_dropped,
                        at => l.dead_lettered_at.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0)).map(|t| t.to_rfc3339()),
                    }).collect::<Vec<_>>(),
                },
                Err(error) => context! { name, error, queues => Vec::<()>::new(), letters => Vec::<()>::new() },
            }
        }
    });
    let services = futures::future::join_all(asks).await;
    render(
        &state,
        "dead_letters.html",
        Some(&session),
        "console",
        context! { services, limit => DEAD_LETTERS_SHOWN, replayed => (!q.replayed.is_empty()).then_some(q.replayed) },
    )
}

#[derive(Deserialize)]
pub struct ReplayForm {
    service: String,
    topic: String,
    partition: i32,
    offset: i64,
}

/// Replays one dead letter into its source topic, through the service that owns the queue.
pub async fn replay_dead_letter(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Form(form): Form<ReplayForm>,
) -> Result<Response, PageError> {
    let session = editor(&jar)?;
    let at = state
        .dead_letters(&form.service)?
        .replay_dead_letter(newsroom_proto::v1::ReplayDeadLetterRequest {
            topic: form.topic.clone(),
            partition: form.partition,
            offset: form.offset,
        })
        .await?
        .into_inner();
    let to = format!("{}/{}/{}", at.topic, at.partition, at.offset);
    tracing::info!(target: "newsroom::audit", service = %form.service, dlq = %format!("{}/{}/{}", form.topic, form.partition, form.offset), to = %to, editor = %session.user, "dead letter replayed from the console");
    // Topic names and numbers only: nothing a query value must escape ('/' may stand in one).
    Ok(
        axum::response::Redirect::to(&format!("/console/dead-letters?replayed={to}"))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> AlertForm {
        AlertForm {
            story_id: "s1".into(),
            audience: "everyone".into(),
            segment: String::new(),
            critical: None,
            approval: String::new(),
        }
    }

    #[test]
    fn an_alert_form_becomes_a_request_or_names_its_field() {
        let r = form().request(true).unwrap();
        assert!(r.dry_run && !r.critical);
        let e = AlertForm {
            audience: "segment".into(),
            ..form()
        }
        .request(false)
        .unwrap_err();
        assert!(e.to_string().starts_with("segment:"), "{e}");
        let e = AlertForm {
            story_id: " ".into(),
            ..form()
        }
        .request(false)
        .unwrap_err();
        assert!(e.to_string().starts_with("story_id:"), "{e}");
        let e = AlertForm {
            audience: "all".into(),
            ..form()
        }
        .request(false)
        .unwrap_err();
        assert!(e.to_string().starts_with("audience:"), "{e}");
    }
}
