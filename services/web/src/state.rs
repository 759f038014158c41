//! What every handler shares: the configuration, the templates, the session key, and lazy
//! gRPC channels to the four services with the credentials web calls them with.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum_extra::extract::cookie::Key;
use newsroom_proto::v1::dead_letter_service_client::DeadLetterServiceClient;
use newsroom_proto::v1::enrichment_service_client::EnrichmentServiceClient;
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::config::Config;
use crate::error::WebError;
use crate::session::Caller;

/// Adds `authorization: Bearer <credential>` to every request of a client.
#[derive(Clone)]
pub struct Credential(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Credential {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

pub type Authed = InterceptedService<Channel, Credential>;
pub type Recommendation = RecommendationServiceClient<Authed>;
pub type Notification = NotificationServiceClient<Authed>;
pub type Ingest = IngestServiceClient<Authed>;
pub type Enrichment = EnrichmentServiceClient<Authed>;
pub type DeadLetters = DeadLetterServiceClient<Authed>;

/// The four services, by the name the console shows.
pub const SERVICES: [&str; 4] = ["ingest", "enrichment", "recommendation", "notification"];

/// The handlers' shared state.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub key: Key,
    pub templates: &'static minijinja::Environment<'static>,
    /// The OpenID Connect provider, discovered on first use.
    pub oidc: crate::oidc::Oidc,
    /// For the provider's discovery, token and key endpoints.
    pub http: reqwest::Client,
    recommendation: Channel,
    notification: Channel,
    ingest: Channel,
    enrichment: Channel,
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Key {
        state.key.clone()
    }
}

/// Why web could not start.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{var}: {source}")]
    Url {
        var: &'static str,
        source: tonic::transport::Error,
    },
    #[error("templates: {0}")]
    Templates(String),
    #[error("HTTP client: {0}")]
    Http(String),
}

impl AppState {
    pub fn new(config: Config) -> Result<Self, StateError> {
        let key = match &config.session_key {
            Some(bytes) => Key::from(bytes),
            None => Key::generate(),
        };
        let channel = |var: &'static str, url: &str| -> Result<Channel, StateError> {
            let mut endpoint = Endpoint::from_shared(url.to_owned())
                .map_err(|source| StateError::Url { var, source })?
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(10));
            if url.starts_with("https://") {
                let host = endpoint.uri().host().unwrap_or("localhost").to_owned();
                if let Some(tls) = config.platform.tls.client_config(&host) {
                    endpoint = endpoint
                        .tls_config(tls)
                        .map_err(|source| StateError::Url { var, source })?;
                }
            }
            Ok(endpoint.connect_lazy())
        };
        use crate::config::*;
        Ok(AppState {
            recommendation: channel(NEWSROOM_RECOMMENDATION_URL, &config.recommendation_url)?,
            notification: channel(NEWSROOM_NOTIFICATION_URL, &config.notification_url)?,
            ingest: channel(NEWSROOM_INGEST_URL, &config.ingest_url)?,
            enrichment: channel(NEWSROOM_ENRICHMENT_URL, &config.enrichment_url)?,
            templates: crate::views::templates().map_err(StateError::Templates)?,
            oidc: crate::oidc::Oidc::default(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| StateError::Http(e.to_string()))?,
            key,
            config: Arc::new(config),
        })
    }

    fn credential(token: &str) -> Result<Credential, WebError> {
        format!("Bearer {token}")
            .parse()
            .map(Credential)
            .map_err(|_| WebError::Unauthenticated("authorization: not a valid header value"))
    }

    /// The credential a reader-facing call goes with: web's `service` credential for a session,
    /// the reader's own token otherwise.
    fn reader_credential(&self, caller: &Caller) -> Result<Credential, WebError> {
        match caller {
            Caller::Session(_) => Self::credential(&self.config.service_token),
            Caller::Bearer(token) => Self::credential(token),
        }
    }

    pub fn recommendation(&self, caller: &Caller) -> Result<Recommendation, WebError> {
        Ok(RecommendationServiceClient::with_interceptor(
            self.recommendation.clone(),
            self.reader_credential(caller)?,
        ))
    }

    pub fn notification(&self, caller: &Caller) -> Result<Notification, WebError> {
        Ok(NotificationServiceClient::with_interceptor(
            self.notification.clone(),
            self.reader_credential(caller)?,
        ))
    }

    /// Clients with web's `editor` credential, for the console.
    pub fn editor_notification(&self) -> Result<Notification, WebError> {
        Ok(NotificationServiceClient::with_interceptor(
            self.notification.clone(),
            Self::credential(&self.config.editor_token)?,
        ))
    }

    pub fn editor_recommendation(&self) -> Result<Recommendation, WebError> {
        Ok(RecommendationServiceClient::with_interceptor(
            self.recommendation.clone(),
            Self::credential(&self.config.editor_token)?,
        ))
    }

    pub fn editor_ingest(&self) -> Result<Ingest, WebError> {
        Ok(IngestServiceClient::with_interceptor(
            self.ingest.clone(),
            Self::credential(&self.config.editor_token)?,
        ))
    }

    pub fn editor_enrichment(&self) -> Result<Enrichment, WebError> {
        Ok(EnrichmentServiceClient::with_interceptor(
            self.enrichment.clone(),
            Self::credential(&self.config.editor_token)?,
        ))
    }

    /// A service's `DeadLetterService` (one of [`SERVICES`]), with web's `editor` credential.
    pub fn dead_letters(&self, service: &str) -> Result<DeadLetters, WebError> {
        let channel = match service {
            "ingest" => &self.ingest,
            "enrichment" => &self.enrichment,
            "recommendation" => &self.recommendation,
            "notification" => &self.notification,
            _ => {
                return Err(WebError::invalid(
                    "service",
                    "one of ingest, enrichment, recommendation, notification",
                ));
            }
        };
        Ok(DeadLetterServiceClient::with_interceptor(
            channel.clone(),
            Self::credential(&self.config.editor_token)?,
        ))
    }

    /// Whether cookies need `Secure` (anywhere but loopback).
    pub fn secure_cookies(&self) -> bool {
        !self.config.addr.ip().is_loopback()
    }
}
