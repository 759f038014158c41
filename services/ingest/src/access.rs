//! Who may submit what, and how fast.
//!
//! - API keys: `authorization: Bearer <key>` metadata. Each key is bound to one source (or `*`
//!   for a trusted gateway that submits for any source); a story whose source is not the key's
//!   is `PERMISSION_DENIED`, a missing or unknown key `UNAUTHENTICATED`. JWTs of the platform's
//!   auth layer are accepted too (a `source` token for the source of its `source` claim). With
//!   no keys configured ingest is open — only on loopback (the local stack), and it says so once
//!   at start; off loopback it refuses to start without keys or a JWKS. Keys never appear in logs.
//! - Alert-level urgency (1..=`NEWSROOM_INGEST_ALERT_URGENCY`) alerts every follower: only the
//!   sources in `NEWSROOM_INGEST_ALERT_SOURCES` may send it (`PERMISSION_DENIED` naming
//!   `story.urgency` otherwise).
//! - Rate limits: a GCRA limiter per source (governor); over the limit is `RESOURCE_EXHAUSTED`
//!   with a `google.rpc.RetryInfo` saying when to retry.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use newsroom_platform::auth::{Auth, AuthMode, Role};
use newsroom_platform::config::ConfigError;
use tonic::Status;
use tonic::metadata::MetadataMap;
use tonic_types::{ErrorDetails, StatusExt as _};

/// API keys and the sources they may submit for: `key=source,key2=*`.
pub const NEWSROOM_INGEST_API_KEYS: &str = "NEWSROOM_INGEST_API_KEYS";
/// Stories per second per source (the burst is the same). Default 2000.
pub const NEWSROOM_INGEST_RATE_PER_SOURCE: &str = "NEWSROOM_INGEST_RATE_PER_SOURCE";

/// Sources allowed to send alert-level urgency: `reuters,desk`, or `*` for all. Default: all
/// when ingest runs open (no keys, loopback), none otherwise.
pub const NEWSROOM_INGEST_ALERT_SOURCES: &str = "NEWSROOM_INGEST_ALERT_SOURCES";
/// The urgencies 1..=this are alert-level (notification alerts them by themselves). Default 2,
/// notification's `NEWSROOM_ALERT_MAX_URGENCY` default.
pub const NEWSROOM_INGEST_ALERT_URGENCY: &str = "NEWSROOM_INGEST_ALERT_URGENCY";

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

    /// The sources the keys are bound to; `None` when a key may submit for any source (`*`)
    /// or there is no key.
    pub fn sources(&self) -> Option<std::collections::HashSet<String>> {
        let mut sources = std::collections::HashSet::new();
        for principal in self.0.values() {
            match principal {
                Principal::AnySource => return None,
                Principal::Source(s) => {
                    sources.insert(s.clone());
                }
            }
        }
        (!sources.is_empty()).then_some(sources)
    }

    fn get(&self, key: &str) -> Option<Principal> {
        self.0.get(key).cloned()
    }
}

/// Who may submit: API keys, and JWTs of the platform's auth layer (a `source` token with its
/// `source` claim, `*` for any; the service and editor roles submit for any source).
#[derive(Debug, Clone)]
pub struct Access {
    pub keys: ApiKeys,
    pub auth: Auth,
}

impl Access {
    /// The caller of a request.
    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, Status> {
        let Some(key) = newsroom_platform::auth::bearer(metadata)? else {
            if self.keys.is_empty() && self.auth.mode() == AuthMode::Local {
                return Ok(Principal::AnySource);
            }
            return Err(Status::unauthenticated(
                "authorization: a Bearer API key or source token is required",
            ));
        };
        if let Some(principal) = self.keys.get(key) {
            return Ok(principal);
        }
        if !newsroom_platform::auth::is_jwt(key) && !self.keys.is_empty() {
            return Err(Status::unauthenticated("authorization: unknown API key"));
        }
        let caller = self
            .auth
            .require(metadata, &[Role::Source, Role::Service, Role::Editor])
            .await?;
        if caller.has(Role::Service) || caller.has(Role::Editor) {
            return Ok(Principal::AnySource);
        }
        match caller.source.as_deref().map(str::trim) {
            Some("*") => Ok(Principal::AnySource),
            Some(source) => Ok(Principal::Source(source.to_owned())),
            None => Err(Status::permission_denied(
                "a source token needs a `source` claim naming the source it submits for",
            )),
        }
    }
}

/// Which sources may send alert-level urgency.
#[derive(Debug, Clone)]
pub struct AlertSources {
    any: bool,
    sources: std::collections::HashSet<String>,
    max_urgency: u32,
}

impl AlertSources {
    /// `raw` is `NEWSROOM_INGEST_ALERT_SOURCES` (None = `default_any`).
    pub fn new(raw: Option<&str>, default_any: bool, max_urgency: u32) -> Self {
        let (any, sources) = match raw {
            None => (default_any, Default::default()),
            Some(list) => {
                let sources: std::collections::HashSet<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                (sources.contains("*"), sources)
            }
        };
        AlertSources {
            any,
            sources,
            max_urgency,
        }
    }

    /// Whether `source` may send a story of `urgency` (0 = not given).
    pub fn check(&self, source: &str, urgency: u32) -> Result<(), Refusal> {
        if urgency == 0 || urgency > self.max_urgency || self.any || self.sources.contains(source) {
            return Ok(());
        }
        Err(Refusal::NoAlertUrgency {
            story_source: source.to_owned(),
            urgency,
        })
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
    /// `PERMISSION_DENIED`: the urgency would alert every follower.
    #[error(
        "story.urgency: source {story_source:?} may not send alert-level urgency {urgency} \
         (an operator allows it in {NEWSROOM_INGEST_ALERT_SOURCES})"
    )]
    NoAlertUrgency { story_source: String, urgency: u32 },
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
            Refusal::NotYourSource { .. } | Refusal::NoAlertUrgency { .. } => {
                Status::permission_denied(message)
            }
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

    /// Access as off loopback: the keys, no JWKS.
    fn access(keys: &str) -> Access {
        let env = newsroom_platform::config::Env::from_fn(|k| {
            (k == "NEWSROOM_GRPC_ADDR").then(|| "0.0.0.0:50051".to_owned())
        });
        let platform = newsroom_platform::PlatformConfig::from_env(&env, "ingest", 50051).unwrap();
        Access {
            keys: ApiKeys::parse(keys).unwrap(),
            auth: Auth::from_env_with(&env, &platform, true).unwrap(),
        }
    }

    #[tokio::test]
    async fn keys_bind_sources() {
        let keys = access("reuters-key-0123456789=reuters, gateway-key-0123456789=*");
        let reuters = keys
            .authenticate(&metadata("Bearer reuters-key-0123456789"))
            .await
            .unwrap();
        assert!(reuters.may_submit("reuters").is_ok());
        assert_eq!(
            Status::from(reuters.may_submit("afp").unwrap_err()).code(),
            tonic::Code::PermissionDenied
        );
        let gateway = keys
            .authenticate(&metadata("Bearer gateway-key-0123456789"))
            .await
            .unwrap();
        assert!(gateway.may_submit("afp").is_ok());
        for bad in ["Bearer nope", "Basic x", "Bearer a.b.c"] {
            assert_eq!(
                keys.authenticate(&metadata(bad)).await.unwrap_err().code(),
                tonic::Code::Unauthenticated,
                "{bad}"
            );
        }
        assert_eq!(
            keys.authenticate(&MetadataMap::new())
                .await
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated
        );
    }

    #[test]
    fn only_allowed_sources_send_alert_level_urgency() {
        let allowed = AlertSources::new(Some("reuters, desk"), false, 2);
        assert!(allowed.check("reuters", 1).is_ok());
        assert!(
            allowed.check("blog", 3).is_ok(),
            "routine urgency is anyone's"
        );
        assert!(allowed.check("blog", 0).is_ok());
        let refused = Status::from(allowed.check("blog", 1).unwrap_err());
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(
            refused.message().starts_with("story.urgency"),
            "{}",
            refused.message()
        );
        assert!(
            AlertSources::new(Some("*"), false, 2)
                .check("blog", 1)
                .is_ok()
        );
        assert!(AlertSources::new(None, true, 2).check("blog", 1).is_ok());
        assert!(AlertSources::new(None, false, 2).check("blog", 2).is_err());
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
