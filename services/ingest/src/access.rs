//! Who may submit what, and how fast.
//!
//! - API keys: `authorization: Bearer <key>` metadata. Each key is bound to one source (or `*`
//!   for a trusted gateway that submits for any source); a story whose source is not the key's
//!   is `PERMISSION_DENIED`, a missing or unknown key `UNAUTHENTICATED`. With no keys configured
//!   ingest is open (the local stack) and says so once at start. Keys never appear in logs.
//! - Rate limits: a GCRA limiter per source (governor); over the limit is `RESOURCE_EXHAUSTED`
//!   with a `google.rpc.RetryInfo` saying when to retry.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use newsroom_platform::config::ConfigError;
use tonic::Status;
use tonic::metadata::MetadataMap;
use tonic_types::{ErrorDetails, StatusExt as _};

/// API keys and the sources they may submit for: `key=source,key2=*`.
pub const NEWSROOM_INGEST_API_KEYS: &str = "NEWSROOM_INGEST_API_KEYS";
/// Stories per second per source (the burst is the same). Default 2000.
pub const NEWSROOM_INGEST_RATE_PER_SOURCE: &str = "NEWSROOM_INGEST_RATE_PER_SOURCE";

/// What a caller may submit for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Any source: no keys configured, or a `*` key.
    AnySource,
    Source(String),
}

/// The configured keys.
#[derive(Clone, Default)]
pub struct ApiKeys(HashMap<String, Principal>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a key.
        write!(f, "ApiKeys({} keys)", self.0.len())
    }
}

impl ApiKeys {
    /// Parses `key=source,key2=*`.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let mut keys = HashMap::new();
        for (i, pair) in raw
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            let Some((key, source)) = pair.split_once('=') else {
                return Err(ConfigError::invalid(
                    NEWSROOM_INGEST_API_KEYS,
                    "<redacted>",
                    format!("entry {i} is not key=source"),
                ));
            };
            let (key, source) = (key.trim(), source.trim());
            if key.len() < 16 || source.is_empty() {
                return Err(ConfigError::invalid(
                    NEWSROOM_INGEST_API_KEYS,
                    "<redacted>",
                    format!("entry {i}: keys have at least 16 characters and a source (or *)"),
                ));
            }
            let principal = if source == "*" {
                Principal::AnySource
            } else {
                Principal::Source(source.to_owned())
            };
            keys.insert(key.to_owned(), principal);
        }
        Ok(ApiKeys(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The caller of a request.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, Status> {
        if self.0.is_empty() {
            return Ok(Principal::AnySource);
        }
        let header = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Status::unauthenticated("authorization: a Bearer API key is required")
            })?;
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| Status::unauthenticated("authorization: expected `Bearer <key>`"))?;
        self.0
            .get(key)
            .cloned()
            .ok_or_else(|| Status::unauthenticated("authorization: unknown API key"))
    }
}

impl Principal {
    /// Whether this caller may submit for `source`.
    pub fn may_submit(&self, source: &str) -> Result<(), Refusal> {
        match self {
            Principal::AnySource => Ok(()),
            Principal::Source(own) if own == source => Ok(()),
            Principal::Source(own) => Err(Refusal::NotYourSource {
                key_source: own.clone(),
                story_source: source.to_owned(),
            }),
        }
    }
}

/// Why a caller may not submit a story: not theirs to submit, or not now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `PERMISSION_DENIED`.
    #[error("story.source: this API key submits for {key_source:?}, not {story_source:?}")]
    NotYourSource {
        key_source: String,
        story_source: String,
    },
    /// `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo`.
    #[error("source {story_source:?} is over its rate limit; retry in {} ms", .retry_after.as_millis())]
    OverRate {
        story_source: String,
        /// At least a millisecond.
        retry_after: Duration,
    },
}

impl From<Refusal> for Status {
    fn from(r: Refusal) -> Self {
        let message = r.to_string();
        match r {
            Refusal::NotYourSource { .. } => Status::permission_denied(message),
            Refusal::OverRate { retry_after, .. } => Status::with_error_details(
                tonic::Code::ResourceExhausted,
                message,
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
        }
    }
}

/// Per-source rate limits.
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn per_second(n: NonZeroU32) -> Self {
        RateLimits {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(n).allow_burst(n)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one story of `source`'s allowance, or says when to retry.
    pub fn check(&self, source: &str) -> Result<(), Refusal> {
        match self.limiter.check_key(&source.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(Refusal::OverRate {
                    story_source: source.to_owned(),
                    retry_after: wait.max(Duration::from_millis(1)),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(auth: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", auth.parse().unwrap());
        m
    }

    #[test]
    fn keys_bind_sources() {
        let keys =
            ApiKeys::parse("reuters-key-0123456789=reuters, gateway-key-0123456789=*").unwrap();
        let reuters = keys
            .authenticate(&metadata("Bearer reuters-key-0123456789"))
            .unwrap();
        assert!(reuters.may_submit("reuters").is_ok());
        assert_eq!(
            Status::from(reuters.may_submit("afp").unwrap_err()).code(),
            tonic::Code::PermissionDenied
        );
        let gateway = keys
            .authenticate(&metadata("Bearer gateway-key-0123456789"))
            .unwrap();
        assert!(gateway.may_submit("afp").is_ok());
        for bad in ["Bearer nope", "Basic x"] {
            assert_eq!(
                keys.authenticate(&metadata(bad)).unwrap_err().code(),
                tonic::Code::Unauthenticated
            );
        }
        assert_eq!(
            keys.authenticate(&MetadataMap::new()).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }

    #[test]
    fn bad_key_config_is_refused_without_printing_keys() {
        let err = ApiKeys::parse("short=reuters").unwrap_err().to_string();
        assert!(
            err.starts_with(NEWSROOM_INGEST_API_KEYS) && !err.contains("short"),
            "{err}"
        );
        assert!(
            format!("{:?}", ApiKeys::parse("reuters-key-0123456789=r").unwrap()).contains("1 keys")
        );
    }

    #[test]
    fn the_limit_answers_resource_exhausted_with_a_delay() {
        let limits = RateLimits::per_second(NonZeroU32::new(2).unwrap());
        assert!(limits.check("a").is_ok());
        assert!(limits.check("a").is_ok());
        let err = Status::from(limits.check("a").unwrap_err());
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(err.get_details_retry_info().is_some());
        assert!(limits.check("b").is_ok(), "limits are per source");
    }
}
