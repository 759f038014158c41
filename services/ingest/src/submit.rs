//! The submission core: validation → access → identity → produce, for every way a story comes
//! in. gRPC ([`crate::api`]), the feed poller ([`crate::poller`]) and the embargo task
//! ([`crate::embargo`]) all go through one [`Submitter`], so a story polled from a feed is
//! checked, versioned, counted and written exactly as one submitted by a client.
//!
//! - [`Submitter::submit`]: validate, check the caller and the source's rate, answer a retried
//!   idempotency key, reserve a version (or find a duplicate), write the story to
//!   `stories.raw` (or `stories.held` while embargoed) with its `stories.index` entry, and
//!   answer once Kafka acknowledged both;
//! - [`Submitter::import_document`]: a document of any supported format, item by item;
//! - [`Submitter::release`]: an embargoed version, due, onto `stories.raw` (once).
//!
//! Failures are a [`SubmitError`]; the gRPC adapter turns it into a status.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use newsroom_platform::PlatformConfig;
use newsroom_platform::kafka::{ProduceError, Producer};
use newsroom_platform::metrics::Registry;
use newsroom_platform::metrics::prometheus_client::encoding::EncodeLabelSet;
use newsroom_platform::metrics::prometheus_client::metrics::counter::Counter;
use newsroom_platform::metrics::prometheus_client::metrics::family::Family;
use newsroom_platform::redis::redis::RedisError;
use newsroom_proto::Message as _;
use newsroom_proto::v1::{
    ImportError, Outcome, StoryEvent, StoryIndexEntry, SubmitStoryRequest, SubmitStoryResponse,
};

use crate::access::{AlertSources, Principal, RateLimits, Refusal};
use crate::config::Limits;
use crate::formats;
use crate::identity::{self, Identity, RebuildError, Release, Reservation};
use crate::story::{self, FieldError};

/// Labels of the ingest counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubmitLabels {
    pub source: String,
    pub outcome: String,
}

/// Distinct sources the metrics label by; the rest count as `other`.
pub const MAX_SOURCE_LABELS: usize = 256;

/// Ingest's own metrics.
#[derive(Clone)]
pub struct IngestMetrics {
    pub stories: Family<SubmitLabels, Counter>,
    /// The sources labelled so far: a caller's source is a label only when well-formed and
    /// among the first [`MAX_SOURCE_LABELS`], so made-up sources cannot grow `/metrics`
    /// without bound.
    sources: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The configured sources (API keys' and feeds'), when the configuration names them all:
    /// then only these are labels, whatever the first callers send.
    configured: Option<Arc<std::collections::HashSet<String>>>,
}

impl IngestMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = IngestMetrics {
            stories: Family::default(),
            sources: Arc::default(),
            configured: None,
        };
        registry.register(
            "newsroom_ingest_stories",
            "Story submissions by source and outcome (accepted, updated, held, duplicate, invalid, unavailable)",
            m.stories.clone(),
        );
        m
    }

    /// Labels only `sources` from now on (see [`IngestMetrics::configured`]).
    pub fn with_configured_sources(mut self, sources: std::collections::HashSet<String>) -> Self {
        self.configured = Some(Arc::new(sources));
        self
    }

    fn count(&self, source: &str, outcome: &str) {
        self.stories
            .get_or_create(&SubmitLabels {
                source: self.label_of(source),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// `source` as a label: itself when well-formed and already labelled or below the cap;
    /// else `other`.
    fn label_of(&self, source: &str) -> String {
        if !story::is_source_name(source) {
            return "other".to_owned();
        }
        if let Some(configured) = &self.configured {
            return match configured.contains(source) {
                true => source.to_owned(),
                false => "other".to_owned(),
            };
        }
        let mut known = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if known.contains(source) || known.len() < MAX_SOURCE_LABELS {
            known.insert(source.to_owned());
            source.to_owned()
        } else {
            "other".to_owned()
        }
    }
}

/// Why a submission failed. Each message is the one the caller reads.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The caller's mistake in one field.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// Not the caller's source, or over the source's rate.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Redis (identity state) is away.
    #[error("story state unavailable: {0}")]
    Redis(#[from] RedisError),
    /// Kafka did not acknowledge the story.
    #[error(transparent)]
    Kafka(#[from] ProduceError),
    /// Redis lost the identity state and it could not be rebuilt from `stories.index`.
    #[error("rebuilding identity state: {0}")]
    Rebuild(RebuildError),
    /// Redis lost the identity state again while it was being rebuilt.
    #[error("identity state is being rebuilt; retry")]
    StateLost,
}

/// Why an embargoed version could not be released (yet).
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error(transparent)]
    Kafka(#[from] ProduceError),
}

/// The submission core (see the module documentation). Cheap to clone.
#[derive(Clone)]
pub struct Submitter {
    producer: Producer,
    identity: Identity,
    raw_topic: String,
    index_topic: String,
    held_topic: String,
    limits: Limits,
    metrics: IngestMetrics,
    rates: Arc<RateLimits>,
    alert_sources: Arc<AlertSources>,
    platform: PlatformConfig,
    /// One identity rebuild at a time; the other submissions wait for it.
    rebuild: Arc<tokio::sync::Mutex<()>>,
}

impl Submitter {
    pub fn new(
        producer: Producer,
        identity: Identity,
        limits: Limits,
        metrics: IngestMetrics,
        rates: RateLimits,
        alert_sources: AlertSources,
        platform: PlatformConfig,
    ) -> Self {
        use newsroom_platform::kafka::topics;
        Submitter {
            producer,
            identity,
            raw_topic: platform.topic(topics::STORIES_RAW),
            index_topic: platform.topic(topics::STORIES_INDEX),
            held_topic: platform.topic(topics::STORIES_HELD),
            limits,
            metrics,
            rates: Arc::new(rates),
            alert_sources: Arc::new(alert_sources),
            platform,
            rebuild: Arc::default(),
        }
    }

    /// Validates, versions and publishes one story; the heart of every submission path.
    #[tracing::instrument(skip_all, fields(story.source, story.id, story.version))]
    pub async fn submit(
        &self,
        principal: &Principal,
        req: SubmitStoryRequest,
    ) -> Result<SubmitStoryResponse, SubmitError> {
        let source_hint = req
            .story
            .as_ref()
            .map(|s| s.source.trim().to_owned())
            .unwrap_or_default();
        let valid = match story::validate(req.story, &self.limits) {
            Ok(v) => v,
            Err(e) => {
                self.metrics.count(&source_hint, "invalid");
                return Err(e.into());
            }
        };
        let mut story = valid.story;
        let span = tracing::Span::current();
        span.record("story.source", story.source.as_str());
        principal.may_submit(&story.source)?;
        if let Err(refusal) = self.alert_sources.check(&story.source, story.urgency) {
            self.metrics.count(&story.source, "refused");
            return Err(refusal.into());
        }
        if let Err(refusal) = self.rates.check(&story.source) {
            self.metrics.count(&story.source, "rate_limited");
            return Err(refusal.into());
        }

        let idem = req.idempotency_key.trim();
        if idem.len() > story::MAX_IDEMPOTENCY_KEY_BYTES {
            self.metrics.count(&story.source, "invalid");
            return Err(FieldError::new(
                "idempotency_key",
                format!(
                    "{} bytes, at most {} allowed",
                    idem.len(),
                    story::MAX_IDEMPOTENCY_KEY_BYTES
                ),
            )
            .into());
        }
        if !idem.is_empty()
            && let Some(bytes) = self.identity.remembered(&story.source, idem).await?
            && let Ok(answer) = SubmitStoryResponse::decode(bytes.as_slice())
        {
            return Ok(answer);
        }

        let id = identity::story_id(&story.source, &valid.guid);
        span.record("story.id", id.as_str());
        let fingerprint = story::fingerprint(&story);
        let mut reservation = self.identity.reserve(&id, &fingerprint).await?;
        if reservation == Reservation::StateLost {
            // Redis lost our state while running: rebuild it once (other calls wait on the
            // lock), then reserve again.
            let _one_at_a_time = self.rebuild.lock().await;
            let restored =
                identity::rebuild_if_lost(&self.platform, &self.identity, &self.index_topic)
                    .await
                    .map_err(SubmitError::Rebuild)?;
            if restored > 0 {
                tracing::warn!(
                    stories = restored,
                    "redis lost ingest's state; rebuilt from stories.index"
                );
            }
            reservation = self.identity.reserve(&id, &fingerprint).await?;
        }
        let answer = match reservation {
            Reservation::StateLost => return Err(SubmitError::StateLost),
            Reservation::Duplicate(version) => {
                self.metrics.count(&story.source, "duplicate");
                SubmitStoryResponse {
                    story_id: id,
                    version,
                    outcome: Outcome::Duplicate as i32,
                }
            }
            Reservation::New {
                version,
                held: earlier_held,
            } => {
                span.record("story.version", version);
                story.id = id.clone();
                story.version = version;
                if story.guid.is_empty() {
                    story.guid = valid.guid;
                }
                let source = story.source.clone();
                let event = StoryEvent {
                    story: Some(story),
                    fingerprint: fingerprint.clone(),
                    accepted_at: Some(SystemTime::now().into()),
                };
                // An embargoed version waits on `stories.held`; anything else goes straight on.
                let held = event
                    .story
                    .as_ref()
                    .and_then(story::embargo_until_ms)
                    .is_some_and(|ms| ms > story::now_ms());
                let topic = if held {
                    &self.held_topic
                } else {
                    &self.raw_topic
                };
                let entry = StoryIndexEntry {
                    story_id: id.clone(),
                    version,
                    fingerprint: fingerprint.clone(),
                };
                let event = event.encode_to_vec();
                // The story and its identity entry are written together; the answer waits for
                // both acknowledgements.
                let written = futures::future::try_join3(
                    self.producer.send(topic, &id, &event),
                    futures::future::try_join_all(identity::index_records(&entry).into_iter().map(
                        |(key, value)| async move {
                            match value {
                                Some(v) => self.producer.send(&self.index_topic, &key, &v).await,
                                None => self.producer.send_tombstone(&self.index_topic, &key).await,
                            }
                        },
                    )),
                    async {
                        if earlier_held && !held {
                            // This version supersedes a held one (an update or a kill during
                            // the embargo): tombstone it, the release task drops it.
                            self.producer.send_tombstone(&self.held_topic, &id).await?;
                        }
                        Ok(())
                    },
                )
                .await;
                if let Err(e) = written {
                    self.metrics.count(&source, "unavailable");
                    return Err(e.into());
                }
                self.identity
                    .commit(&id, version, &fingerprint, held)
                    .await?;
                let outcome = if version == 1 {
                    Outcome::Accepted
                } else {
                    Outcome::Updated
                };
                self.metrics.count(
                    &source,
                    match (held, version) {
                        (true, _) => "held",
                        (false, 1) => "accepted",
                        (false, _) => "updated",
                    },
                );
                tracing::debug!(story.id = %id, version, "story accepted");
                SubmitStoryResponse {
                    story_id: id,
                    version,
                    outcome: outcome as i32,
                }
            }
        };
        if !idem.is_empty() {
            self.identity
                .remember(&source_hint, idem, &answer.encode_to_vec())
                .await?;
        }
        Ok(answer)
    }

    /// Imports a document (any supported format) for `source`: one answer per item that
    /// became a story version, one error per item that could not. A document that cannot be
    /// read at all is `INVALID_ARGUMENT`; a dependency down is `UNAVAILABLE` (what was written
    /// before stays written).
    pub async fn import_document(
        &self,
        principal: &Principal,
        document: &[u8],
        format: &str,
        source: &str,
    ) -> Result<(Vec<SubmitStoryResponse>, Vec<ImportError>), SubmitError> {
        let source = source.trim();
        if source.is_empty() {
            return Err(invalid(
                "source",
                "required (the feed or wire the document comes from)",
            ));
        }
        principal.may_submit(source)?;
        if document.len() > self.limits.max_document_bytes {
            return Err(invalid(
                "document",
                &format!(
                    "{} bytes, at most {} allowed",
                    document.len(),
                    self.limits.max_document_bytes
                ),
            ));
        }
        // A parser that panics on some input is a bug, but it must cost that one document, not
        // the call (RST_STREAM) or a polled feed's task: caught, logged, INVALID_ARGUMENT.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            formats::parse(document, format, source)
        }));
        let items = match parsed {
            Ok(items) => items.map_err(FieldError::from)?,
            Err(_) => {
                tracing::error!(
                    source,
                    bytes = document.len(),
                    "a parser panicked on this document (a bug): refused"
                );
                return Err(invalid(
                    "document",
                    "could not be parsed (the parser failed on this input)",
                ));
            }
        };
        // Refused whole, before anything is written: the caller splits the document.
        if items.len() > self.limits.max_import_items {
            return Err(invalid(
                "document",
                &format!(
                    "{} items, at most {} in one import; split it",
                    items.len(),
                    self.limits.max_import_items
                ),
            ));
        }
        let (mut results, mut errors) = (Vec::new(), Vec::new());
        for (index, item) in items.into_iter().enumerate() {
            let error = |guid: String, field: &str, reason: String| ImportError {
                index: index as u32,
                guid,
                field: format!("items[{index}].{field}"),
                reason,
            };
            match item {
                Err(e) => errors.push(error(e.guid, &e.field, e.reason)),
                Ok(story) => {
                    let guid = story.guid.clone();
                    let request = SubmitStoryRequest {
                        story: Some(story),
                        idempotency_key: String::new(),
                    };
                    match self.submit(principal, request).await {
                        Ok(answer) => results.push(answer),
                        Err(SubmitError::Invalid(f)) => {
                            errors.push(error(guid, &f.field, f.reason))
                        }
                        Err(other) => return Err(other),
                    }
                }
            }
        }
        Ok((results, errors))
    }

    /// Releases a due embargoed version: leases the release (one replica writes it), writes it
    /// to `stories.raw` unless a newer version was acknowledged meanwhile (an update or a kill
    /// supersedes what was held), records it released only once Kafka acknowledged it, then
    /// tombstones the hold. Repeating it is harmless; a failure at any step leaves the hold for
    /// the next attempt. Returns when to look again if another replica holds the lease.
    pub async fn release(
        &self,
        id: &str,
        event: &StoryEvent,
    ) -> Result<Option<Duration>, ReleaseError> {
        let version = event.story.as_ref().map_or(0, |s| s.version);
        match self.identity.lease_release(id, version).await? {
            Release::Busy => return Ok(Some(identity::RELEASE_LEASE)),
            Release::Done => {}
            Release::Leased => {
                let superseded = self
                    .identity
                    .acknowledged_version(id)
                    .await?
                    .is_some_and(|latest| latest > version);
                if !superseded {
                    self.producer
                        .send(&self.raw_topic, id, &event.encode_to_vec())
                        .await?;
                    tracing::info!(story.id = %id, version, "embargo lifted, story released");
                }
                self.identity.mark_released(id, version).await?;
            }
        }
        self.producer.send_tombstone(&self.held_topic, id).await?;
        Ok(None)
    }
}

/// A `FieldError` for a field of the request itself (not of a story).
fn invalid(field: &str, reason: &str) -> SubmitError {
    SubmitError::Invalid(FieldError {
        field: field.to_owned(),
        reason: reason.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_configured_sources_only_those_are_labels() {
        let metrics = IngestMetrics::register(&mut Registry::default())
            .with_configured_sources(["reuters".to_owned()].into_iter().collect());
        assert_eq!(metrics.label_of("reuters"), "reuters");
        assert_eq!(metrics.label_of("made-up-1"), "other");
    }

    #[test]
    fn made_up_sources_cannot_grow_the_metrics_without_bound() {
        let metrics = IngestMetrics::register(&mut Registry::default());
        for n in 0..MAX_SOURCE_LABELS + 50 {
            metrics.count(&format!("source-{n}"), "invalid");
        }
        metrics.count("source-0", "accepted");
        metrics.count("<script>", "invalid");
        let mut text = String::new();
        let mut registry = Registry::default();
        registry.register("stories", "", metrics.stories.clone());
        newsroom_platform::metrics::prometheus_client::encoding::text::encode(&mut text, &registry)
            .unwrap();
        let sources: std::collections::HashSet<&str> = text
            .lines()
            .filter_map(|l| l.split("source=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(
            sources.len(),
            MAX_SOURCE_LABELS + 1,
            "the first {MAX_SOURCE_LABELS}, and other"
        );
        assert!(sources.contains("other") && sources.contains("source-0"));
        assert!(!sources.contains("<script>"));
    }
}
