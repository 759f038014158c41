//! gRPC server bootstrap and the HTTP admin port.
//!
//! [`serve`] runs the service's gRPC routes together with `grpc.health.v1.Health`, gRPC server
//! reflection (`v1` and `v1alpha`, since clients differ in which they ask for) and a span per
//! call that continues the caller's trace (W3C `traceparent` in the metadata). Beside it, on
//! port + 1000, a small HTTP server answers `/healthz` (the process is alive), `/readyz` (the
//! service has its dependencies and consumers running) and `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::config::PlatformConfig;
pub use crate::readiness::Readiness;
use crate::shutdown::Shutdown;

/// The two listeners of a service, bound before anything else starts.
pub struct Listeners {
    pub grpc: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the configured gRPC and admin addresses.
    pub async fn bind(config: &PlatformConfig) -> std::io::Result<Self> {
        Ok(Listeners {
            grpc: TcpListener::bind(config.grpc_addr).await?,
            admin: TcpListener::bind(config.admin_addr).await?,
        })
    }

    /// Binds both on 127.0.0.1 with ports chosen by the OS (tests).
    pub async fn ephemeral() -> std::io::Result<Self> {
        Ok(Listeners {
            grpc: TcpListener::bind("127.0.0.1:0").await?,
            admin: TcpListener::bind("127.0.0.1:0").await?,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }
}

/// Error from the servers.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("admin server: {0}")]
    Admin(#[from] std::io::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// How the gRPC server accepts connections: TLS ([`crate::tls`]) and the streams one
/// connection may have open ([`crate::config::NEWSROOM_GRPC_MAX_STREAMS`]).
pub struct GrpcOptions {
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    pub max_streams: u32,
}

/// A request whose protobuf does not decode (a string that is not UTF-8, a truncated field) is
/// the caller's mistake: tonic answers `INTERNAL`; this makes it `INVALID_ARGUMENT`, keeping
/// prost's message, which names the field (`SubmitStoryRequest.story: Story.headline: invalid
/// string value: data is not UTF-8 encoded`). Unary answers carry the status in the headers.
fn undecodable_is_invalid_argument(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let headers = response.headers_mut();
    let internal = headers
        .get("grpc-status")
        .is_some_and(|s| s.as_bytes() == b"13");
    let undecodable = headers
        .get("grpc-message")
        .is_some_and(|m| m.as_bytes().starts_with(b"failed%20to%20decode%20Protobuf"));
    if internal && undecodable {
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
    }
    response
}

/// The same rule for a message of a client stream, which fails inside the handler (the
/// stream's item) rather than before it: an undecodable message is `INVALID_ARGUMENT`.
pub fn undecodable_message(status: tonic::Status) -> tonic::Status {
    if status.code() == tonic::Code::Internal
        && status.message().starts_with("failed to decode Protobuf")
    {
        return tonic::Status::invalid_argument(status.message());
    }
    status
}

/// Serves `routes` plus health and reflection on the gRPC listener, and the admin endpoints,
/// until `shutdown` is triggered. `grpc_service` is the full name of the service's gRPC service
/// (`newsroom.v1.IngestService`), reported SERVING by health while `ready` is set.
pub async fn serve(
    grpc_service: &'static str,
    options: GrpcOptions,
    routes: Routes,
    listeners: Listeners,
    registry: Arc<Registry>,
    ready: Readiness,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(newsroom_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(newsroom_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    // Health follows readiness: poll it, so a service that loses a dependency reports so.
    let health_task = {
        let ready = ready.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let status = if ready.get() && !shutdown.is_requested() {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                if last != Some(status) {
                    health_reporter
                        .set_service_status(grpc_service, status)
                        .await;
                    health_reporter.set_service_status("", status).await;
                    last = Some(status);
                }
                tokio::select! {
                    _ = shutdown.requested() => {
                        health_reporter.set_service_status(grpc_service, ServingStatus::NotServing).await;
                        health_reporter.set_service_status("", ServingStatus::NotServing).await;
                        break;
                    }
                    _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
                }
            }
        })
    };

    let admin = admin_router(registry, ready);
    let admin_shutdown = shutdown.clone();
    let admin_task = tokio::spawn(async move {
        axum::serve(listeners.admin, admin)
            .with_graceful_shutdown(async move { admin_shutdown.requested().await })
            .await
    });

    let grpc_shutdown = shutdown.clone();
    let GrpcOptions { tls, max_streams } = options;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        crate::tls::install_crypto_provider();
        builder = builder.tls_config(tls)?;
    }
    let result = builder
        .max_concurrent_streams(Some(max_streams))
        .layer(tower::util::MapResponseLayer::new(
            undecodable_is_invalid_argument as fn(_) -> _,
        ))
        .trace_fn(grpc_span)
        .add_routes(
            routes
                .add_service(health_service)
                .add_service(reflection_v1)
                .add_service(reflection_v1alpha),
        )
        .serve_with_incoming_shutdown(
            // Nagle's algorithm against the client's delayed ACKs costs ~40 ms per small
            // response; tonic only disables it on listeners it binds itself.
            tokio_stream::StreamExt::map(
                tokio_stream::wrappers::TcpListenerStream::new(listeners.grpc),
                |conn| {
                    if let Ok(c) = &conn
                        && let Err(e) = c.set_nodelay(true)
                    {
                        tracing::debug!(error = %e, "TCP_NODELAY not set");
                    }
                    conn
                },
            ),
            async move { grpc_shutdown.requested().await },
        )
        .await;
    health_task.abort();
    let admin_result = admin_task.await;
    result?;
    if let Ok(r) = admin_result {
        r?;
    }
    Ok(())
}

/// One server span per gRPC call, continuing the caller's trace (OpenTelemetry RPC conventions).
fn grpc_span(req: &http::Request<()>) -> tracing::Span {
    let path = req.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let span = tracing::info_span!(
        "grpc",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
    );
    let _ = span.set_parent(crate::telemetry::extract_http(req.headers()));
    span
}

fn admin_router(registry: Arc<Registry>, ready: Readiness) -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let failing = ready.failing();
                let ready = ready.get();
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n".to_owned())
                    } else if failing.is_empty() {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_owned())
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {}\n", failing.join(", ")),
                        )
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let body = crate::metrics::encode(&registry);
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
}
