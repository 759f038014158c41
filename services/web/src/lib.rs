//! Web: the HTTP face of Newsroom — myNEWS for readers, the console for editors, and a
//! versioned JSON API for apps — a client of the four services' public gRPC contracts like any
//! app. It owns no state and no topic: sessions live in signed cookies, everything else is a
//! call to ingest, enrichment, recommendation or notification.
//!
//! - [`config`] — the environment variables;
//! - [`session`] — sign-in sessions and API callers;
//! - [`oidc`] — sign-in with the deployment's OpenID Connect provider (code flow + PKCE);
//! - [`state`] — templates, the session key, the gRPC clients and their credentials;
//! - [`views`] — what pages and the API show, from the services' messages;
//! - [`pages`] — the reader's pages and live alerts (server-sent events);
//! - [`console`] — the editors' console;
//! - [`api`] — the JSON API and its OpenAPI document;
//! - [`error`] — errors as pages and API bodies.

pub mod api;
pub mod config;
pub mod console;
pub mod error;
pub mod oidc;
pub mod pages;
pub mod session;
pub mod state;
pub mod views;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use newsroom_platform::server::Listeners;
use newsroom_platform::shutdown::Shutdown;

pub use config::Config;
pub use state::AppState;

/// Why web stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        get(|| async {
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static($type)),
                    (
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("public, max-age=3600"),
                    ),
                ],
                include_bytes!(concat!("../static/", $name)).as_slice(),
            )
                .into_response()
        })
    };
}

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/feed/more", get(pages::feed_more))
        .route("/signin", get(pages::signin_page))
        .route("/signin/dev", post(pages::dev_signin))
        .route("/signin/oidc", get(oidc::start))
        .route("/signin/oidc/callback", get(oidc::callback))
        .route("/signout", post(pages::signout))
        .route("/follow", post(pages::follow))
        .route("/unfollow", post(pages::unfollow))
        .route("/hide", post(pages::hide))
        .route("/story/{id}", get(pages::story))
        .route(
            "/preferences",
            get(pages::preferences_page).post(pages::save_preferences),
        )
        .route("/events", get(pages::events))
        .route("/console", get(console::console))
        .route("/console/wire", get(console::wire))
        .route("/console/alerts/preview", post(console::preview))
        .route("/console/alerts/send", post(console::send))
        .route("/console/approve", get(console::approve_page))
        .route("/console/alerts/{id}/status", get(console::alert_status))
        .route("/console/stories/{id}/correct", post(console::correct))
        .route("/console/stories/{id}/kill", post(console::kill))
        .route("/console/stories/{id}/retract", post(console::retract))
        .route("/console/dead-letters", get(console::dead_letters))
        .route(
            "/console/dead-letters/replay",
            post(console::replay_dead_letter),
        )
        .route("/api/openapi.json", get(api::openapi))
        .route("/api/v1/feed", get(api::get_feed))
        .route("/api/v1/stories/{id}", get(api::get_story))
        .route("/api/v1/stories/{id}/related", get(api::get_related))
        .route(
            "/api/v1/follows",
            get(api::get_follows)
                .post(api::add_follow)
                .delete(api::remove_follow),
        )
        .route("/api/v1/interactions", post(api::record_interaction))
        .route("/api/v1/push", post(api::register_push))
        .route(
            "/api/v1/preferences",
            get(api::get_preferences).put(api::put_preferences),
        )
        .route(
            "/static/htmx.min.js",
            asset!("htmx.min.js", "text/javascript"),
        )
        .route("/static/app.js", asset!("app.js", "text/javascript"))
        .route("/static/app.css", asset!("app.css", "text/css"))
        .route("/sw.js", asset!("sw.js", "text/javascript"))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { error::WebError::NotFound("no such page".into()) })
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(state)
}

/// Runs web until `shutdown` is triggered, then finishes the requests under way.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> Result<(), RunError> {
    let state = AppState::new(config)?;
    let addr = listeners.grpc_addr();
    tracing::info!(%addr, "web serving on http://{addr}/");
    let drain = state.config.platform.drain_timeout;
    let app = router(state);
    let wait = shutdown.clone();
    let serve = axum::serve(listeners.grpc, app)
        .with_graceful_shutdown(async move { wait.requested().await });
    // Live alert streams never end by themselves: past the drain timeout they are cut.
    tokio::select! {
        r = serve => r?,
        () = async {
            shutdown.requested().await;
            tokio::time::sleep(drain).await;
        } => tracing::info!("open live streams closed at the drain timeout"),
    }
    Ok(())
}
