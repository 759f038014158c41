//! The options every command takes (`global = true`: before or after the command's name), and
//! the gRPC clients of the services they point at.
//!
//! A client connects when it is made, with a short timeout: a service that is not there is
//! exit 69 before the command does anything, not a hang.

use std::time::Duration;

use clap::ValueEnum;
use newsroom_proto::v1::ingest_service_client::IngestServiceClient;
use newsroom_proto::v1::notification_service_client::NotificationServiceClient;
use newsroom_proto::v1::recommendation_service_client::RecommendationServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::Error;

/// Options every command takes.
#[derive(clap::Args)]
pub struct Globals {
    /// Ingest's gRPC address.
    #[arg(
        long,
        env = "NEWSROOM_INGEST_URL",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub ingest: String,
    /// Recommendation's gRPC address.
    #[arg(
        long,
        env = "NEWSROOM_RECOMMENDATION_URL",
        default_value = "http://127.0.0.1:50053",
        global = true
    )]
    pub recommendation: String,
    /// Notification's gRPC address.
    #[arg(
        long,
        env = "NEWSROOM_NOTIFICATION_URL",
        default_value = "http://127.0.0.1:50054",
        global = true
    )]
    pub notification: String,
    /// Bearer credential sent to every service: a JWT (`newsroom token` mints development
    /// ones), a static back-office token, or ingest's API key; not needed against the local
    /// stack (`local` auth mode on loopback).
    #[arg(long, env = "NEWSROOM_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Kafka bootstrap servers (`tail`, `lag`, `replay`).
    #[arg(
        long,
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub brokers: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub output: Output,
}

/// What a command writes on standard output.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    // Plain comments, not docs: a doc here would change `--help`'s list of values.
    // Lines for a person (and progress bars on a terminal).
    Text,
    // One JSON object a line, nothing else.
    Json,
}

/// The clients, sending `authorization: Bearer <token>` when a token is given.
pub type Authed = InterceptedService<Channel, BearerToken>;
pub type Ingest = IngestServiceClient<Authed>;
pub type Recommendation = RecommendationServiceClient<Authed>;
pub type Notification = NotificationServiceClient<Authed>;

/// Adds the `--token` to every request.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

impl Globals {
    /// Whether the output is JSON lines.
    pub fn json(&self) -> bool {
        self.output == Output::Json
    }

    /// The `--token` as an interceptor; a token that is not a valid header value is refused
    /// before connecting.
    fn bearer(&self) -> Result<BearerToken, Error> {
        let token = self
            .token
            .as_ref()
            .map(|t| format!("Bearer {t}").parse())
            .transpose()
            .map_err(|_| Error::BadToken)?;
        Ok(BearerToken(token))
    }

    pub async fn ingest_client(&self) -> Result<Ingest, Error> {
        let bearer = self.bearer()?;
        Ok(IngestServiceClient::with_interceptor(
            channel(&self.ingest).await?,
            bearer,
        ))
    }

    pub async fn recommendation_client(&self) -> Result<Recommendation, Error> {
        let bearer = self.bearer()?;
        Ok(RecommendationServiceClient::with_interceptor(
            channel(&self.recommendation).await?,
            bearer,
        ))
    }

    pub async fn notification_client(&self) -> Result<Notification, Error> {
        let bearer = self.bearer()?;
        Ok(NotificationServiceClient::with_interceptor(
            channel(&self.notification).await?,
            bearer,
        ))
    }
}

/// A channel to `url`; an `https://` URL is TLS, trusting `NEWSROOM_TLS_CA` (else the system's
/// CAs) and presenting `NEWSROOM_TLS_CERT` / `NEWSROOM_TLS_KEY` to servers that ask (mTLS).
async fn channel(url: &str) -> Result<Channel, tonic::transport::Error> {
    let mut endpoint =
        Endpoint::from_shared(url.to_owned())?.connect_timeout(Duration::from_secs(5));
    if url.starts_with("https://") {
        use newsroom_platform::tls;
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        tls::install_crypto_provider();
        let read = |var: &str| std::env::var_os(var).and_then(|p| std::fs::read(p).ok());
        let mut config = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = read(tls::NEWSROOM_TLS_CA) {
            config = config.ca_certificate(Certificate::from_pem(ca));
        }
        if let (Some(cert), Some(key)) = (read(tls::NEWSROOM_TLS_CERT), read(tls::NEWSROOM_TLS_KEY))
        {
            config = config.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(config)?;
    }
    endpoint.connect().await
}
