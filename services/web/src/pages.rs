//! The reader's pages (myNEWS): sign-in, the feed with its reasons and infinite scroll, follow
//! chips, "not interested", the story page, alert preferences, and live alerts over
//! server-sent events. Every page works with plain forms; htmx (vendored) makes the chips,
//! "not interested" and the scroll happen in place.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::SignedCookieJar;
use futures::Stream;
use minijinja::context;
use newsroom_proto::v1::{
    Channel, Device, FollowRequest, FollowTarget, GetDeviceRequest, GetFeedRequest,
    GetProfileRequest, GetRelatedRequest, GetStoryRequest, InteractionKind, InteractionRequest,
    Preferences, RegisterDeviceRequest, StreamAlertsRequest, UpdatePreferencesRequest,
};
use serde::Deserialize;
use tokio_stream::StreamExt as _;

use crate::error::WebError;
use crate::session::{Caller, Session, valid_user};
use crate::state::AppState;
use crate::views;

/// Stories a feed page shows.
pub const PAGE: u32 = 20;

/// A page, or the page that says what went wrong.
pub struct PageError(pub WebError);

impl From<WebError> for PageError {
    fn from(e: WebError) -> Self {
        PageError(e)
    }
}

impl From<tonic::Status> for PageError {
    fn from(s: tonic::Status) -> Self {
        PageError(WebError::Upstream(s))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, _, message, _) = self.0.parts();
        if status == StatusCode::UNAUTHORIZED {
            return Redirect::to("/signin").into_response();
        }
        let title = status.canonical_reason().unwrap_or("Error");
        // The templates the service started with (compiled once, not per error).
        let body = crate::views::templates()
            .ok()
            .and_then(|t| {
                t.get_template("error.html")
                    .ok()?
                    .render(context! { status => status.as_u16(), title, message })
                    .ok()
            })
            .unwrap_or_else(|| format!("<h1>{title}</h1>"));
        (status, Html(body)).into_response()
    }
}

pub type PageResult = Result<Response, PageError>;

/// Renders a template with the page's common context.
pub fn render(
    state: &AppState,
    name: &str,
    session: Option<&Session>,
    page: &str,
    ctx: minijinja::Value,
) -> PageResult {
    let common = context! {
        session => session.map(|s| context! { user => s.user.clone(), editor => s.editor }),
        page,
        vapid_public_key => state.config.vapid_public_key.clone(),
        dev_signin => state.config.dev_signin,
        oidc => state.config.oidc.as_ref().map(|o| o.name.clone()),
    };
    let html = state
        .templates
        .get_template(name)
        .and_then(|t| t.render(context! { ..common, ..ctx }))
        .map_err(|e| {
            tracing::error!(error = %e, template = name, "a template failed");
            WebError::Upstream(tonic::Status::internal("template"))
        })?;
    Ok(Html(html).into_response())
}

/// The signed-in reader, or the sign-in page.
pub fn signed_in(jar: &SignedCookieJar) -> Result<Session, PageError> {
    Session::of(jar).ok_or(PageError(WebError::Unauthenticated("sign in")))
}

/// Whether htmx asked (an in-place update rather than a whole page).
fn htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

pub async fn signin_page(State(state): State<AppState>, jar: SignedCookieJar) -> PageResult {
    if Session::of(&jar).is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    render(&state, "signin.html", None, "signin", context! {})
}

#[derive(Deserialize)]
pub struct DevSignin {
    user: String,
    editor: Option<String>,
}

pub async fn dev_signin(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Form(form): Form<DevSignin>,
) -> Result<Response, PageError> {
    if !state.config.dev_signin {
        return Err(WebError::Forbidden("the development sign-in is off here").into());
    }
    let user = form.user.trim().to_owned();
    valid_user(&user).map_err(|r| WebError::invalid("user", r))?;
    let session = Session::new(user, form.editor.is_some());
    let jar = session.store(jar, state.secure_cookies());
    Ok((jar, Redirect::to("/")).into_response())
}

pub async fn signout(jar: SignedCookieJar) -> Response {
    (Session::clear(jar), Redirect::to("/signin")).into_response()
}

/// What the reader follows, as `kind:value` strings the chips compare with.
async fn following(state: &AppState, caller: &Caller) -> Result<HashSet<String>, WebError> {
    let profile = state
        .recommendation(caller)?
        .get_profile(GetProfileRequest {
            user_id: caller.user().to_owned(),
        })
        .await?
        .into_inner();
    Ok(chip_keys(&profile.follows))
}

/// Follows as the chips compare them: `kind:value`.
fn chip_keys(follows: &[newsroom_proto::v1::FollowTarget]) -> HashSet<String> {
    views::profile(follows)
        .follows
        .into_iter()
        .map(|f| format!("{}:{}", f.kind.as_str(), f.value))
        .collect()
}

/// One page of the feed, as cards.
pub async fn feed_page(
    state: &AppState,
    caller: &Caller,
    cursor: &str,
    limit: u32,
) -> Result<views::FeedPage, WebError> {
    let page = state
        .recommendation(caller)?
        .get_feed(GetFeedRequest {
            user_id: caller.user().to_owned(),
            limit,
            cursor: cursor.to_owned(),
        })
        .await?
        .into_inner();
    Ok(views::FeedPage {
        items: page.items.iter().filter_map(views::card).collect(),
        next_cursor: page.next_cursor,
    })
}

#[derive(Deserialize)]
pub struct CursorQuery {
    #[serde(default)]
    cursor: String,
}

pub async fn home(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Query(q): Query<CursorQuery>,
) -> PageResult {
    feed_view(&state, &jar, &q.cursor, "feed.html").await
}

/// The next cards, for the infinite scroll.
pub async fn feed_more(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Query(q): Query<CursorQuery>,
) -> PageResult {
    feed_view(&state, &jar, &q.cursor, "_cards.html").await
}

/// A page of the reader's feed (from `cursor`) rendered with `template`: the whole page, or
/// its cards alone.
async fn feed_view(
    state: &AppState,
    jar: &SignedCookieJar,
    cursor: &str,
    template: &str,
) -> PageResult {
    let session = signed_in(jar)?;
    let caller = Caller::Session(session.clone());
    let (page, following) = tokio::try_join!(
        feed_page(state, &caller, cursor, PAGE),
        following(state, &caller)
    )?;
    render(
        state,
        template,
        Some(&session),
        "feed",
        context! { cards => page.items, next_cursor => page.next_cursor, cursor, following },
    )
}

#[derive(Deserialize)]
pub struct FollowForm {
    kind: String,
    value: String,
    #[serde(default)]
    label: String,
}

/// Checks a follow target from a form or the API.
pub fn target(kind: &str, value: &str) -> Result<FollowTarget, WebError> {
    let k = views::target_kind(kind).ok_or_else(|| {
        WebError::invalid("kind", "expected topic, entity, section, author or cluster")
    })?;
    let value = value.trim();
    if value.is_empty() || value.len() > 256 {
        return Err(WebError::invalid("value", "expected 1 to 256 characters"));
    }
    Ok(FollowTarget {
        kind: k as i32,
        value: value.to_owned(),
    })
}

async fn change_follow(
    state: AppState,
    jar: SignedCookieJar,
    headers: HeaderMap,
    form: FollowForm,
    follow: bool,
) -> PageResult {
    let session = signed_in(&jar)?;
    let caller = Caller::Session(session.clone());
    let target = target(&form.kind, &form.value)?;
    let req = FollowRequest {
        user_id: session.user.clone(),
        target: Some(target.clone()),
    };
    let mut rec = state.recommendation(&caller)?;
    let profile = if follow {
        rec.follow(req).await?
    } else {
        rec.unfollow(req).await?
    }
    .into_inner();
    if !htmx(&headers) {
        return Ok(Redirect::to(
            headers
                .get("referer")
                .and_then(|v| v.to_str().ok())
                .filter(|r| {
                    r.starts_with('/') || r.contains("://127.0.0.1") || r.contains("://localhost")
                })
                .unwrap_or("/"),
        )
        .into_response());
    }
    let following = chip_keys(&profile.follows);
    let label = if form.label.is_empty() {
        form.value.clone()
    } else {
        form.label
    };
    // The chip alone, without its list item: htmx swaps the form.
    let html = render(
        &state,
        "_chip.html",
        Some(&session),
        "feed",
        context! { kind => form.kind, value => target.value, label, following },
    )?;
    Ok(html)
}

pub async fn follow(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    headers: HeaderMap,
    Form(form): Form<FollowForm>,
) -> PageResult {
    change_follow(state, jar, headers, form, true).await
}

pub async fn unfollow(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    headers: HeaderMap,
    Form(form): Form<FollowForm>,
) -> PageResult {
    change_follow(state, jar, headers, form, false).await
}

#[derive(Deserialize)]
pub struct HideForm {
    story_id: String,
}

pub async fn hide(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    headers: HeaderMap,
    Form(form): Form<HideForm>,
) -> PageResult {
    let session = signed_in(&jar)?;
    let caller = Caller::Session(session.clone());
    if form.story_id.trim().is_empty() {
        return Err(WebError::invalid("story_id", "required").into());
    }
    state
        .recommendation(&caller)?
        .record_interaction(InteractionRequest {
            user_id: session.user,
            story_id: form.story_id,
            kind: InteractionKind::Hide as i32,
            dwell_ms: 0,
        })
        .await?;
    if htmx(&headers) {
        Ok(
            Html("<p class=\"muted hidden-note\">Hidden. You will see less like it.</p>")
                .into_response(),
        )
    } else {
        Ok(Redirect::to("/").into_response())
    }
}

pub async fn story(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Path(id): Path<String>,
) -> PageResult {
    let session = signed_in(&jar)?;
    let caller = Caller::Session(session.clone());
    let mut rec = state.recommendation(&caller)?;
    let (story, related, following) = tokio::try_join!(
        async {
            rec.clone()
                .get_story(GetStoryRequest {
                    story_id: id.clone(),
                })
                .await
                .map_err(WebError::from)
        },
        async {
            rec.clone()
                .get_related(GetRelatedRequest {
                    story_id: id.clone(),
                    limit: 5,
                })
                .await
                .map_err(WebError::from)
        },
        following(&state, &caller)
    )?;
    let view =
        views::story(story.get_ref()).ok_or_else(|| WebError::NotFound(format!("story {id}")))?;
    let related: Vec<views::Card> = related
        .into_inner()
        .items
        .iter()
        .filter_map(views::card)
        .collect();
    // Opening the story page is reading it: it leaves the feed and shapes the reader's taste.
    let _ = rec
        .record_interaction(InteractionRequest {
            user_id: session.user.clone(),
            story_id: id,
            kind: InteractionKind::Read as i32,
            dwell_ms: 0,
        })
        .await;
    // The editor's desk: every version, with its stage runs and a link to its trace.
    let versions = if session.editor {
        match state
            .editor_recommendation()?
            .get_story_history(GetStoryRequest {
                story_id: view.id.clone(),
            })
            .await
        {
            Ok(h) => views::versions(h.get_ref(), &state.config.trace_url),
            Err(e) if e.code() == tonic::Code::NotFound => Vec::new(),
            Err(e) => return Err(WebError::from(e).into()),
        }
    } else {
        Vec::new()
    };
    render(
        &state,
        "story.html",
        Some(&session),
        "story",
        context! { story => view, related, following, versions },
    )
}

/// The web's in-app device of a reader: where live alerts and the page's preferences go.
pub fn web_device(user: &str) -> String {
    format!("web-{user}")
}

/// The reader's web device, registered (in-app) if it is not yet, with its time zone set to
/// `timezone` when given and different; its preferences are kept.
pub async fn web_device_of(
    state: &AppState,
    caller: &Caller,
    user: &str,
    timezone: Option<String>,
) -> Result<Device, WebError> {
    let mut notif = state.notification(caller)?;
    let id = web_device(user);
    let existing = match notif
        .get_device(GetDeviceRequest {
            device_id: id.clone(),
        })
        .await
    {
        Ok(d) => Some(d.into_inner()),
        Err(s) if s.code() == tonic::Code::NotFound => None,
        Err(s) => return Err(s.into()),
    };
    let stale_zone = |d: &Device| timezone.as_ref().is_some_and(|tz| *tz != d.timezone);
    match existing {
        Some(d) if !stale_zone(&d) => Ok(d),
        existing => {
            let mut device = existing.unwrap_or(Device {
                device_id: id,
                user_id: user.to_owned(),
                channel: Channel::InApp as i32,
                ..Default::default()
            });
            if let Some(tz) = timezone {
                device.timezone = tz;
            }
            Ok(notif
                .register_device(RegisterDeviceRequest {
                    device: Some(device),
                })
                .await?
                .into_inner())
        }
    }
}

#[derive(Deserialize)]
pub struct PrefsQuery {
    #[serde(default)]
    saved: Option<String>,
}

pub async fn preferences_page(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Query(q): Query<PrefsQuery>,
) -> PageResult {
    let session = signed_in(&jar)?;
    let caller = Caller::Session(session.clone());
    let device = web_device_of(&state, &caller, &session.user, None).await?;
    let prefs = device.preferences.unwrap_or(Preferences {
        breaking_alerts: true,
        ..Default::default()
    });
    render(
        &state,
        "preferences.html",
        Some(&session),
        "preferences",
        context! {
            saved => q.saved.is_some(),
            prefs => context! {
                breaking_alerts => prefs.breaking_alerts,
                quiet_start => prefs.quiet_start,
                quiet_end => prefs.quiet_end,
                max_alerts_per_day => prefs.max_alerts_per_day,
                language => prefs.language,
                timezone => device.timezone,
            },
        },
    )
}

#[derive(Deserialize)]
pub struct PrefsForm {
    breaking_alerts: Option<String>,
    #[serde(default)]
    quiet_start: String,
    #[serde(default)]
    quiet_end: String,
    #[serde(default)]
    max_alerts_per_day: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    timezone: String,
}

pub async fn save_preferences(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Form(form): Form<PrefsForm>,
) -> PageResult {
    let session = signed_in(&jar)?;
    let caller = Caller::Session(session.clone());
    let max = match form.max_alerts_per_day.trim() {
        "" => 0,
        v => v
            .parse::<u32>()
            .map_err(|_| WebError::invalid("max_alerts_per_day", "expected a whole number"))?,
    };
    let prefs = Preferences {
        breaking_alerts: form.breaking_alerts.is_some(),
        quiet_start: form.quiet_start.trim().to_owned(),
        quiet_end: form.quiet_end.trim().to_owned(),
        max_alerts_per_day: max,
        language: form.language.trim().to_owned(),
        ..Default::default()
    };
    if !form.timezone.trim().is_empty() {
        // The reader's zone comes from their browser; it is a property of the device.
        web_device_of(
            &state,
            &caller,
            &session.user,
            Some(form.timezone.trim().to_owned()),
        )
        .await?;
    }
    state
        .notification(&caller)?
        .update_preferences(UpdatePreferencesRequest {
            user_id: session.user,
            preferences: Some(prefs),
            device_id: String::new(),
            update_mask: Some(prost_types::FieldMask {
                paths: [
                    "breaking_alerts",
                    "quiet_start",
                    "quiet_end",
                    "max_alerts_per_day",
                    "language",
                ]
                .map(str::to_owned)
                .to_vec(),
            }),
        })
        .await?;
    Ok(Redirect::to("/preferences?saved=1").into_response())
}

#[derive(Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    tz: String,
}

/// Live alerts for the signed-in reader: notification's in-app stream as server-sent events
/// (`event: alert`, JSON data), a keep-alive every 15 s.
pub async fn events(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    let session = signed_in(&jar)?;
    let caller = Caller::Session(session.clone());
    // The page is an in-app device of the reader: alerts reach it like a phone.
    let tz: String = q.tz.trim().chars().take(64).collect();
    web_device_of(
        &state,
        &caller,
        &session.user,
        Some(tz).filter(|t| !t.is_empty()),
    )
    .await?;
    let stream = state
        .notification(&caller)?
        .stream_alerts(StreamAlertsRequest {
            user_id: session.user,
            since: None,
        })
        .await?
        .into_inner();
    let events = stream.map_while(|alert| {
        let alert = alert.ok()?;
        let data = serde_json::json!({
            "story_id": alert.story_id,
            "headline": alert.headline,
            "url": format!("/story/{}", alert.story_id),
            "urgency": alert.urgency,
            "critical": alert.critical,
            "correction": alert.correction,
            "retracted": alert.retracted,
            "collapse_id": alert.collapse_id,
        });
        Some(Ok(Event::default().event("alert").data(data.to_string())))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
