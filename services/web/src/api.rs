//! The JSON API for apps, version 1 (`/api/v1/…`), and its OpenAPI document
//! (`/api/openapi.json`, generated from these handlers and types by utoipa).
//!
//! A request acts for the reader of its session cookie, or of its `Authorization: Bearer`
//! reader token, which the services verify. Every 4xx body names what was wrong
//! (`{"error": {"code", "message", "field"}}`); query and body values are checked here before
//! any service is called.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use newsroom_proto::v1::{
    FollowRequest, GetProfileRequest, GetRelatedRequest, GetStoryRequest, InteractionKind,
    InteractionRequest, Preferences, UpdatePreferencesRequest,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::error::{ErrorBody, WebError};
use crate::pages::{feed_page, target, web_device_of};
use crate::session::Caller;
use crate::state::AppState;
use crate::views::{self, FeedPage, Follow, Profile, RelatedList, StoryView};

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Newsroom API",
        version = "1",
        description = "A reader's personalised feed, stories, follows, interactions and alert preferences. Sign in (a session cookie) or send a reader token as Authorization: Bearer."
    ),
    paths(get_feed, get_story, get_related, get_follows, add_follow, remove_follow, record_interaction, get_preferences, put_preferences, register_push),
    components(schemas(FeedPage, StoryView, RelatedList, Profile, Follow, InteractionBody, InteractionKindBody, PreferencesBody, PushBody, PushSubscription, PushKeys, ErrorBody)),
    modifiers(&Security),
    security(("bearer" = []), ("session" = []))
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::session::COOKIE))),
        );
    }
}

pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Query parameters as strings, checked by hand so each error names its parameter.
type Params = Query<HashMap<String, String>>;

fn known(params: &HashMap<String, String>, allowed: &[&str]) -> Result<(), WebError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) if k.trim().is_empty() => Err(WebError::invalid(
            "query",
            format!(
                "a parameter without a name; expected {}",
                allowed.join(", ")
            ),
        )),
        Some(k) => Err(WebError::invalid(
            k,
            format!("unknown parameter; expected one of {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn limit(params: &HashMap<String, String>, max: u32, default: u32) -> Result<u32, WebError> {
    match params.get("limit").map(|s| s.trim()) {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(WebError::invalid(
                "limit",
                format!("expected a whole number 1..{max}"),
            )),
        },
    }
}

/// A JSON body, with the field at fault named when it does not fit.
fn body<T: DeserializeOwned>(headers: &HeaderMap, bytes: &Bytes) -> Result<T, WebError> {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(WebError::invalid(
            "content-type",
            "expected application/json",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        // The path of the value at fault ("kind", "subscription.keys.auth"); "body" for a body
        // that is not JSON or not an object.
        let path = e.path().to_string();
        let missing = missing_field(&e.inner().to_string());
        let field = match (path.as_str(), missing) {
            ("." | "", Some(m)) => m,
            ("." | "", None) => "body".to_owned(),
            (p, Some(m)) => format!("{p}.{m}"),
            (p, None) => p.to_owned(),
        };
        WebError::invalid(&field, e.inner().to_string())
    })
}

/// The field serde says is missing ("missing field `kind`").
fn missing_field(message: &str) -> Option<String> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned)
}

/// A story id in a path: 1 to 128 characters, no control characters.
fn story_id(id: &str) -> Result<String, WebError> {
    let id = id.trim();
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(WebError::invalid(
            "story_id",
            "expected 1 to 128 printable characters",
        ));
    }
    Ok(id.to_owned())
}

/// One page of the reader's feed, best first, with the reasons for each story.
#[utoipa::path(get, path = "/api/v1/feed",
    params(("cursor" = Option<String>, Query, description = "A previous page's next_cursor"),
           ("limit" = Option<u32>, Query, description = "1..100, default 20", minimum = 1, maximum = 100)),
    responses((status = 200, body = FeedPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn get_feed(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Params,
) -> Result<Json<FeedPage>, WebError> {
    known(&p, &["cursor", "limit"])?;
    let limit = limit(&p, 100, 20)?;
    let cursor = p
        .get("cursor")
        .map(|c| c.trim().to_owned())
        .unwrap_or_default();
    if cursor.len() > 256 {
        return Err(WebError::invalid(
            "cursor",
            "expected a previous page's next_cursor",
        ));
    }
    Ok(Json(feed_page(&state, &caller, &cursor, limit).await?))
}

/// A story, with its enrichment.
#[utoipa::path(get, path = "/api/v1/stories/{id}",
    params(("id" = String, Path, description = "The story's id")),
    responses((status = 200, body = StoryView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_story(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<StoryView>, WebError> {
    let id = story_id(&id)?;
    let s = state
        .recommendation(&caller)?
        .get_story(GetStoryRequest {
            story_id: id.clone(),
        })
        .await?;
    views::story(s.get_ref())
        .map(Json)
        .ok_or_else(|| WebError::NotFound(format!("story {id}")))
}

/// A story's related stories: the same event first, then the nearest in meaning.
#[utoipa::path(get, path = "/api/v1/stories/{id}/related",
    params(("id" = String, Path, description = "The story's id"),
           ("limit" = Option<u32>, Query, description = "1..20, default 5", minimum = 1, maximum = 20)),
    responses((status = 200, body = RelatedList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_related(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(p): Params,
) -> Result<Json<RelatedList>, WebError> {
    known(&p, &["limit"])?;
    let id = story_id(&id)?;
    let limit = limit(&p, 20, 5)?;
    let r = state
        .recommendation(&caller)?
        .get_related(GetRelatedRequest {
            story_id: id,
            limit,
        })
        .await?;
    Ok(Json(RelatedList {
        items: r
            .into_inner()
            .items
            .iter()
            .filter_map(views::card)
            .collect(),
    }))
}

/// What the reader follows.
#[utoipa::path(get, path = "/api/v1/follows",
    responses((status = 200, body = Profile), (status = 401, body = ErrorBody)))]
pub async fn get_follows(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Profile>, WebError> {
    let p = state
        .recommendation(&caller)?
        .get_profile(GetProfileRequest {
            user_id: caller.user().to_owned(),
        })
        .await?;
    Ok(Json(views::profile(&p.into_inner().follows)))
}

async fn change_follow(
    state: &AppState,
    caller: &Caller,
    f: Follow,
    follow: bool,
) -> Result<Json<Profile>, WebError> {
    let target = target(f.kind.as_str(), &f.value)?;
    let req = FollowRequest {
        user_id: caller.user().to_owned(),
        target: Some(target),
    };
    let mut rec = state.recommendation(caller)?;
    let p = if follow {
        rec.follow(req).await?
    } else {
        rec.unfollow(req).await?
    };
    Ok(Json(views::profile(&p.into_inner().follows)))
}

/// Follows a topic, entity, section, author or developing story (cluster).
#[utoipa::path(post, path = "/api/v1/follows", request_body = Follow,
    responses((status = 200, body = Profile), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn add_follow(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Profile>, WebError> {
    let f: Follow = body(&headers, &bytes)?;
    change_follow(&state, &caller, f, true).await
}

/// Stops following.
#[utoipa::path(delete, path = "/api/v1/follows", request_body = Follow,
    responses((status = 200, body = Profile), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn remove_follow(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Profile>, WebError> {
    let f: Follow = body(&headers, &bytes)?;
    change_follow(&state, &caller, f, false).await
}

/// What a reader did with a story.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractionBody {
    #[schema(min_length = 1, max_length = 128)]
    pub story_id: String,
    pub kind: InteractionKindBody,
    /// How long they read, in milliseconds.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 86400000)]
    pub dwell_ms: u32,
}

/// Records what the reader did with a story (a read leaves the feed and shapes their
/// interests; hide is "not interested").
#[utoipa::path(post, path = "/api/v1/interactions", request_body = InteractionBody,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn record_interaction(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<StatusCode, WebError> {
    let b: InteractionBody = body(&headers, &bytes)?;
    let story_id = story_id(&b.story_id)?;
    let kind = match b.kind {
        InteractionKindBody::View => InteractionKind::View,
        InteractionKindBody::Click => InteractionKind::Click,
        InteractionKindBody::Read => InteractionKind::Read,
        InteractionKindBody::Share => InteractionKind::Share,
        InteractionKindBody::Hide => InteractionKind::Hide,
    };
    if b.dwell_ms > 86_400_000 {
        return Err(WebError::invalid(
            "dwell_ms",
            "expected at most a day (86400000)",
        ));
    }
    state
        .recommendation(&caller)?
        .record_interaction(InteractionRequest {
            user_id: caller.user().to_owned(),
            story_id,
            kind: kind as i32,
            dwell_ms: b.dwell_ms,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the reader did: hide is "not interested".
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InteractionKindBody {
    View,
    Click,
    Read,
    Share,
    Hide,
}

/// A reader's alert preferences (those of their web device; a change applies to every device).
#[derive(Debug, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    pub breaking_alerts: Option<bool>,
    /// "22:00"; with quiet_end, the hours no routine alert is sent, in the device's zone.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$|^$")]
    pub quiet_start: Option<String>,
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$|^$")]
    pub quiet_end: Option<String>,
    /// 0: no limit.
    #[schema(minimum = 0, maximum = 1000)]
    pub max_alerts_per_day: Option<u32>,
    /// BCP 47; empty: any language.
    #[schema(pattern = "^[A-Za-z-]{0,12}$")]
    pub language: Option<String>,
    /// IANA zone of the device ("Europe/London").
    pub timezone: Option<String>,
}

/// The reader's alert preferences.
#[utoipa::path(get, path = "/api/v1/preferences",
    responses((status = 200, body = PreferencesBody), (status = 401, body = ErrorBody)))]
pub async fn get_preferences(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PreferencesBody>, WebError> {
    let Caller::Session(s) = &caller else {
        return Err(WebError::Forbidden(
            "preferences of the web device need a signed-in session",
        ));
    };
    let d = web_device_of(&state, &caller, &s.user, None).await?;
    let p = d.preferences.unwrap_or(Preferences {
        breaking_alerts: true,
        ..Default::default()
    });
    Ok(Json(PreferencesBody {
        breaking_alerts: Some(p.breaking_alerts),
        quiet_start: Some(p.quiet_start),
        quiet_end: Some(p.quiet_end),
        max_alerts_per_day: Some(p.max_alerts_per_day),
        language: Some(p.language),
        timezone: Some(d.timezone),
    }))
}

fn hhmm(field: &str, v: &str) -> Result<(), WebError> {
    if v.is_empty() || chrono::NaiveTime::parse_from_str(v, "%H:%M").is_ok() {
        Ok(())
    } else {
        Err(WebError::invalid(
            field,
            "expected HH:MM (24-hour), or empty",
        ))
    }
}

/// Changes the fields given; the others stay.
#[utoipa::path(put, path = "/api/v1/preferences", request_body = PreferencesBody,
    responses((status = 200, body = PreferencesBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn put_preferences(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<PreferencesBody>, WebError> {
    let Caller::Session(s) = &caller else {
        return Err(WebError::Forbidden(
            "preferences of the web device need a signed-in session",
        ));
    };
    let b: PreferencesBody = body(&headers, &bytes)?;
    let mut paths = Vec::new();
    let mut p = Preferences::default();
    if let Some(v) = b.breaking_alerts {
        p.breaking_alerts = v;
        paths.push("breaking_alerts");
    }
    if let Some(v) = &b.quiet_start {
        hhmm("quiet_start", v)?;
        p.quiet_start = v.clone();
        paths.push("quiet_start");
    }
    if let Some(v) = &b.quiet_end {
        hhmm("quiet_end", v)?;
        p.quiet_end = v.clone();
        paths.push("quiet_end");
    }
    if let Some(v) = b.max_alerts_per_day {
        if v > 1000 {
            return Err(WebError::invalid("max_alerts_per_day", "expected 0..1000"));
        }
        p.max_alerts_per_day = v;
        paths.push("max_alerts_per_day");
    }
    if let Some(v) = &b.language {
        if v.len() > 12 || !v.chars().all(|c| c.is_ascii_alphabetic() || c == '-') {
            return Err(WebError::invalid(
                "language",
                "expected a BCP 47 tag such as en or pt-BR, or empty",
            ));
        }
        p.language = v.clone();
        paths.push("language");
    }
    if let Some(tz) = &b.timezone
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        return Err(WebError::invalid(
            "timezone",
            "expected an IANA time zone such as Europe/London",
        ));
    }
    web_device_of(&state, &caller, &s.user, b.timezone.clone()).await?;
    if !paths.is_empty() {
        state
            .notification(&caller)?
            .update_preferences(UpdatePreferencesRequest {
                user_id: s.user.clone(),
                preferences: Some(p),
                device_id: String::new(),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.into_iter().map(str::to_owned).collect(),
                }),
            })
            .await?;
    }
    get_preferences(State(state), caller).await
}

/// A browser's Web Push subscription (`PushSubscription.toJSON()`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct PushBody {
    pub subscription: PushSubscription,
    /// IANA zone of the browser, for quiet hours.
    #[serde(default)]
    pub timezone: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PushSubscription {
    /// The push service's https URL.
    #[schema(pattern = "^https://", max_length = 2048)]
    pub endpoint: String,
    pub keys: PushKeys,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PushKeys {
    pub p256dh: String,
    pub auth: String,
}

/// Registers this browser for Web Push alerts (one device per endpoint).
#[utoipa::path(post, path = "/api/v1/push", request_body = PushBody,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn register_push(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<StatusCode, WebError> {
    let b: PushBody = body(&headers, &bytes)?;
    let endpoint = b.subscription.endpoint.trim();
    if !endpoint.starts_with("https://") || endpoint.len() > 2048 {
        return Err(WebError::invalid(
            "subscription.endpoint",
            "expected the push service's https URL",
        ));
    }
    if !b.timezone.is_empty() && b.timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(WebError::invalid(
            "timezone",
            "expected an IANA time zone such as Europe/London",
        ));
    }
    // One device per subscription: its id is derived from the endpoint, so subscribing twice
    // registers the same device.
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(endpoint.as_bytes());
    let device_id = format!(
        "webpush-{}",
        &base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, digest)[..22]
    );
    state
        .notification(&caller)?
        .register_device(newsroom_proto::v1::RegisterDeviceRequest {
            device: Some(newsroom_proto::v1::Device {
                device_id,
                user_id: caller.user().to_owned(),
                channel: newsroom_proto::v1::Channel::WebPush as i32,
                address: endpoint.to_owned(),
                web_push: Some(newsroom_proto::v1::WebPushKeys {
                    p256dh: b.subscription.keys.p256dh,
                    auth: b.subscription.keys.auth,
                }),
                timezone: b.timezone,
                ..Default::default()
            }),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
