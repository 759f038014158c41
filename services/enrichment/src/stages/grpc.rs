//! `type = "grpc"`: a remote stage — any service implementing `newsroom.v1.EnrichmentStage`,
//! in any language.
//!
//! Each story is one `Enrich` call carrying the story and what earlier stages found; the
//! response's enrichment is merged like a built-in stage's (restricted to the fields the stage
//! declares in `writes`). The call carries:
//! - a **deadline**: what is left of the stage's `timeout_ms`, as gRPC's `grpc-timeout`, so the
//!   remote can give up when nobody waits any more;
//! - **trace context**: W3C `traceparent` in the metadata, from a client span that is a child
//!   of the story's consumer span, so the remote's work sits in the story's trace;
//! - **retries**: up to `retries` more calls on UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED or a
//!   transport error, with a short backoff, while the deadline allows;
//! - a **circuit breaker**: after `breaker_failures` consecutive failed calls the stage fails
//!   fast (UNAVAILABLE, "circuit open") for `breaker_cooldown_ms`, then lets one trial call
//!   through; a success closes it. A remote that is down then costs microseconds per story, not
//!   its timeout, and `on_error` decides what happens to the story.
//!
//! INVALID_ARGUMENT and FAILED_PRECONDITION mean "this story, never": not retried, not counted
//! against the remote's health, and a dead-letter with `on_error = "retry"` or `"dead-letter"`.

use backon::{BackoffBuilder as _, ExponentialBuilder};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use newsroom_proto::v1::EnrichRequest;
use newsroom_proto::v1::enrichment_stage_client::EnrichmentStageClient;
use serde::Deserialize;
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument as _;

use super::{BuildContext, BuildError, StageParams, check_range};
use crate::stage::{self, DynStage, Fields, Stage, StageError, StageInput, StageOutput};

/// Params of the `grpc` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    /// The remote's address, `http://host:port`. Required.
    pub endpoint: String,
    /// Findings of earlier stages the remote reads (names as in `Fields::NAMES`: language,
    /// entities, topics, keywords, summary, counts, breaking_score, cluster_id, embedding,
    /// attributes); the stage runs after the stages that write them. Default: all.
    pub reads: Option<Vec<String>>,
    /// Fields the remote may write; anything else in its answer is ignored. Default: entities,
    /// topics, keywords, attributes.
    pub writes: Option<Vec<String>>,
    /// Extra calls after a transient failure (0..5), within the deadline. Default 2.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Consecutive failed calls that open the circuit (1..1000). Default 5.
    #[serde(default = "default_failures")]
    pub breaker_failures: u32,
    /// How long an open circuit fails fast before one trial call, in ms (10..600000).
    /// Default 10000.
    #[serde(default = "default_cooldown")]
    pub breaker_cooldown_ms: u64,
    /// Longest time to set up a connection, in ms (10..60000). Default 1000.
    #[serde(default = "default_connect")]
    pub connect_timeout_ms: u64,
}

fn default_retries() -> u32 {
    2
}
fn default_failures() -> u32 {
    5
}
fn default_cooldown() -> u64 {
    10_000
}
fn default_connect() -> u64 {
    1000
}

impl GrpcConfig {
    /// What the remote reads and writes: `reads`/`writes`, else their defaults.
    fn fields(&self) -> Result<(Fields, Fields), String> {
        let reads = match &self.reads {
            None => Fields::ALL,
            Some(r) => Fields::parse(r).map_err(|e| format!("reads: {e}"))?,
        };
        let writes = match &self.writes {
            None => Fields::ENTITIES
                .union(Fields::TOPICS)
                .union(Fields::KEYWORDS)
                .union(Fields::ATTRIBUTES),
            Some(w) => Fields::parse(w).map_err(|e| format!("writes: {e}"))?,
        };
        Ok((reads, writes))
    }
}

impl StageParams for GrpcConfig {
    fn validate(&self) -> Result<(), String> {
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            return Err(format!(
                "endpoint: expected http://host:port, got {:?}",
                self.endpoint
            ));
        }
        Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| format!("endpoint {:?}: {e}", self.endpoint))?;
        self.fields()?;
        check_range("retries", self.retries, 0, 5)?;
        check_range("breaker_failures", self.breaker_failures, 1, 1000)?;
        check_range("breaker_cooldown_ms", self.breaker_cooldown_ms, 10, 600_000)?;
        check_range("connect_timeout_ms", self.connect_timeout_ms, 10, 60_000)
    }

    fn build(&self, name: &str, cx: &BuildContext) -> Result<DynStage, BuildError> {
        let (reads, writes) = self.fields().map_err(BuildError)?;
        let mut endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| BuildError(format!("endpoint {:?}: {e}", self.endpoint)))?
            .connect_timeout(Duration::from_millis(self.connect_timeout_ms))
            .tcp_nodelay(true);
        if self.endpoint.starts_with("https://") {
            // TLS (and mTLS, with the service's own certificate) trusting NEWSROOM_TLS_CA.
            let host = endpoint.uri().host().unwrap_or_default().to_owned();
            let tls = cx.tls.client_config(&host).ok_or_else(|| {
                BuildError(format!(
                    "endpoint {:?}: an https:// stage needs {} (the CA it is trusted with)",
                    self.endpoint,
                    newsroom_platform::tls::NEWSROOM_TLS_CA
                ))
            })?;
            newsroom_platform::tls::install_crypto_provider();
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| BuildError(format!("endpoint {:?}: {e}", self.endpoint)))?;
        }
        let channel = endpoint.connect_lazy();
        Ok(Arc::new(Remote {
            name: name.to_owned(),
            endpoint: self.endpoint.clone(),
            client: EnrichmentStageClient::new(channel),
            reads,
            writes,
            retries: self.retries,
            breaker: Breaker::new(
                self.breaker_failures,
                Duration::from_millis(self.breaker_cooldown_ms),
            ),
        }))
    }
}

struct Remote {
    name: String,
    endpoint: String,
    client: EnrichmentStageClient<Channel>,
    reads: Fields,
    writes: Fields,
    retries: u32,
    breaker: Breaker,
}

#[async_trait::async_trait]
impl Stage for Remote {
    fn reads(&self) -> Fields {
        self.reads
    }

    fn writes(&self) -> Fields {
        self.writes
    }

    async fn run(&self, input: &StageInput<'_>) -> Result<StageOutput, StageError> {
        // 20 ms, then doubling: at most `retries` more calls, each only if it fits the deadline.
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(20))
            .with_max_times(self.retries as usize)
            .build();
        loop {
            if !self.breaker.allow() {
                return Err(StageError::Unavailable(format!(
                    "circuit open for {} after repeated failures",
                    self.endpoint
                )));
            }
            let left = input.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StageError::Timeout(0));
            }
            match self.call(input, left).await {
                Ok(out) => {
                    self.breaker.record(true);
                    return Ok(out);
                }
                Err(CallError::Invalid(msg)) => {
                    // The remote is healthy; the story is not.
                    self.breaker.record(true);
                    return Err(StageError::Invalid(msg));
                }
                Err(CallError::Deadline) => {
                    // The remote was too slow for the budget: a failure of its service level.
                    self.breaker.record(false);
                    return Err(StageError::Timeout(0));
                }
                Err(CallError::Transient(msg)) => {
                    self.breaker.record(false);
                    match delays.next() {
                        Some(delay) if Instant::now() + delay < input.deadline => {
                            tokio::time::sleep(delay).await;
                        }
                        _ => {
                            return Err(StageError::Failed(format!("{}: {msg}", self.endpoint)));
                        }
                    }
                }
                Err(CallError::Other(msg)) => {
                    self.breaker.record(false);
                    return Err(StageError::Failed(format!("{}: {msg}", self.endpoint)));
                }
            }
        }
    }
}

enum CallError {
    Invalid(String),
    Deadline,
    Transient(String),
    Other(String),
}

impl Remote {
    async fn call(
        &self,
        input: &StageInput<'_>,
        deadline: Duration,
    ) -> Result<StageOutput, CallError> {
        let span = tracing::info_span!(
            "enrich",
            otel.name = "newsroom.v1.EnrichmentStage/Enrich",
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = "newsroom.v1.EnrichmentStage",
            rpc.method = "Enrich",
            server.address = %self.endpoint,
            newsroom.stage = %self.name,
        );
        let mut enrichment = stage::restrict(input.enrichment.clone(), self.reads);
        enrichment.stage_runs.clear();
        let mut request = tonic::Request::new(EnrichRequest {
            story: Some(input.story.clone()),
            enrichment: Some(enrichment),
        });
        request.set_timeout(deadline);
        let mut client = self.client.clone();
        let result = async move {
            newsroom_platform::telemetry::inject_current(request.metadata_mut());
            client.enrich(request).await
        }
        .instrument(span)
        .await;
        match result {
            Ok(response) => {
                let patch = response.into_inner().enrichment.unwrap_or_default();
                Ok(stage::restrict(patch, self.writes).into())
            }
            Err(status) => {
                use tonic::Code::*;
                let msg = format!("{:?}: {}", status.code(), status.message());
                let expired = Instant::now() >= input.deadline - Duration::from_millis(5);
                Err(match status.code() {
                    DeadlineExceeded => CallError::Deadline,
                    Cancelled if expired => CallError::Deadline,
                    InvalidArgument | FailedPrecondition | OutOfRange => CallError::Invalid(msg),
                    Unavailable | ResourceExhausted | Aborted | Unknown => {
                        CallError::Transient(msg)
                    }
                    _ => CallError::Other(msg),
                })
            }
        }
    }
}

/// A circuit breaker: closed → (N consecutive failures) → open → (cooldown) → half-open (one
/// trial call) → closed on success, open again on failure.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Debug, Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold,
            cooldown,
            state: Mutex::new(BreakerState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        // The state is a few integers: a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may go out now.
    pub fn allow(&self) -> bool {
        let mut s = self.lock();
        match s.open_until {
            None => true,
            Some(until) if Instant::now() < until => false,
            Some(_) if s.trial_in_flight => false,
            Some(_) => {
                s.trial_in_flight = true;
                true
            }
        }
    }

    /// Records a call's outcome.
    pub fn record(&self, ok: bool) {
        let mut s = self.lock();
        s.trial_in_flight = false;
        if ok {
            s.failures = 0;
            s.open_until = None;
        } else {
            s.failures += 1;
            if s.failures >= self.threshold || s.open_until.is_some() {
                s.open_until = Some(Instant::now() + self.cooldown);
            }
        }
    }

    pub fn is_open(&self) -> bool {
        self.lock().open_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_recovers_after_a_trial() {
        let b = Breaker::new(3, Duration::from_millis(50));
        for _ in 0..2 {
            assert!(b.allow());
            b.record(false);
        }
        b.record(true);
        assert!(!b.is_open(), "a success resets the count");
        for _ in 0..3 {
            assert!(b.allow());
            b.record(false);
        }
        assert!(b.is_open());
        assert!(!b.allow(), "open: fail fast");
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.allow(), "after the cooldown one trial goes through");
        assert!(!b.allow(), "only one trial at a time");
        b.record(false);
        assert!(!b.allow(), "a failed trial opens it again");
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.allow());
        b.record(true);
        assert!(!b.is_open() && b.allow());
    }

    #[test]
    fn a_bad_endpoint_or_field_is_a_config_error() {
        let c: GrpcConfig = toml::from_str("endpoint = \"127.0.0.1:1\"").unwrap();
        assert!(c.validate().unwrap_err().contains("endpoint"));
        let c: GrpcConfig =
            toml::from_str("endpoint = \"http://127.0.0.1:1\"\nwrites = [\"colour\"]").unwrap();
        assert!(c.validate().unwrap_err().contains("writes"));
    }
}
