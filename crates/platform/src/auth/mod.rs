//! Who is calling, and what they may do: one authentication layer for all four services.
//!
//! A call carries `authorization: Bearer <credential>` metadata. A credential is either
//!
//! - a **JWT** (three dot-separated parts) signed by a key of the deployment's JWKS
//!   (`NEWSROOM_AUTH_JWKS`: a file or an `https://` URL, re-read every
//!   `NEWSROOM_AUTH_JWKS_REFRESH_S` seconds and at once when a token names an unknown key id),
//!   with RS256, ES256 or EdDSA (verified by `jsonwebtoken`), issuer `NEWSROOM_AUTH_ISSUER`,
//!   audience `NEWSROOM_AUTH_AUDIENCE`, an expiry and a subject. Its `roles` claim (strings)
//!   names its [`Role`]s — none means a reader, as an identity provider's user token is; the
//!   subject of a reader token *is* the reader. A `source` claim binds a source token to the
//!   source it submits for;
//! - or a **static token** from `NEWSROOM_AUTH_TOKENS` (`role:token` or `role:sha256:<hex>`
//!   pairs, comma-separated) for back-office callers that cannot hold a JWT: only SHA-256 hashes
//!   are kept and compared, in constant time; a reader never has a static token.
//!
//! `NEWSROOM_AUTH_MODE`:
//! - `enforce` (the default off loopback; `tokens` is the same): every call needs a valid
//!   credential — `UNAUTHENTICATED` when missing, malformed, expired or unknown,
//!   `PERMISSION_DENIED` when its roles do not allow the call or it acts for another reader.
//!   Starting in this mode with neither a JWKS nor a static token is a configuration error.
//! - `local` (the default on a loopback address): a call without a credential acts as the local
//!   developer with every role, so the demo and the tests work out of the box; a call with one
//!   is checked as above. Tokens minted by `newsroom token` (see [`dev`]) are accepted. `local`
//!   on a non-loopback gRPC address is a configuration error: it never reaches a network.
//!
//! Reader-facing RPCs take the reader from the credential ([`Auth::reader`]): a reader may act
//! only for themself (`PERMISSION_DENIED` otherwise); the `service` role (the reader-facing
//! backend) may act for the reader it names, and every such call is written to the audit log
//! (target `newsroom::audit`). No credential, key or token is ever logged or echoed.

pub mod dev;
mod jwks;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::PlatformConfig;
use crate::config::{ConfigError, Env};

pub use jwks::{JwksSource, KeyStore};

/// `local` or `enforce` (alias `tokens`); see the module documentation.
pub const NEWSROOM_AUTH_MODE: &str = "NEWSROOM_AUTH_MODE";
/// Static `role:token` pairs, comma-separated (`editor:…,service:sha256:<hex>`).
pub const NEWSROOM_AUTH_TOKENS: &str = "NEWSROOM_AUTH_TOKENS";
/// Where the JWT signing keys are: a JWKS file path or an `http(s)://` URL.
pub const NEWSROOM_AUTH_JWKS: &str = "NEWSROOM_AUTH_JWKS";
/// The `iss` a JWT must carry (required with a JWKS; `newsroom-dev` in local mode).
pub const NEWSROOM_AUTH_ISSUER: &str = "NEWSROOM_AUTH_ISSUER";
/// The `aud` a JWT must carry (required with a JWKS; `newsroom` in local mode).
pub const NEWSROOM_AUTH_AUDIENCE: &str = "NEWSROOM_AUTH_AUDIENCE";
/// Seconds between JWKS re-reads (default 300).
pub const NEWSROOM_AUTH_JWKS_REFRESH_S: &str = "NEWSROOM_AUTH_JWKS_REFRESH_S";

/// The local stack's static editor token (local mode, no `NEWSROOM_AUTH_TOKENS`).
pub const LOCAL_EDITOR_TOKEN: &str = "newsroom-local-editor";
/// The local stack's static service token (idem).
pub const LOCAL_SERVICE_TOKEN: &str = "newsroom-local-service";

/// What a credential allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A reader: their own feed, follows, devices, preferences and in-app alerts.
    Reader,
    /// A newsroom editor: alerts, corrections.
    Editor,
    /// A wire or CMS: submits stories for its source.
    Source,
    /// The reader-facing backend: acts for the readers it names (audited).
    Service,
    /// An operator: pipeline and delivery status, replays.
    Operator,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Reader,
        Role::Editor,
        Role::Source,
        Role::Service,
        Role::Operator,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Editor => "editor",
            Role::Source => "source",
            Role::Service => "service",
            Role::Operator => "operator",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// No credential, in local mode: every role.
    Local,
    /// A static token.
    Token,
    /// A verified JWT.
    Jwt,
}

/// The caller of one request.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// The JWT's `sub`; `token:<first 8 hex of its hash>` for a static token; `local`.
    pub subject: String,
    roles: u8,
    /// A source token's `source` claim (`*` = any source).
    pub source: Option<String>,
    pub via: Via,
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Principal({} {:?} [{}])",
            self.subject,
            self.via,
            self.roles_label()
        )
    }
}

impl Principal {
    /// The local developer (local mode, no credential): every role.
    pub fn local() -> Self {
        Principal {
            subject: "local".into(),
            roles: Role::ALL.iter().fold(0, |acc, r| acc | r.bit()),
            source: None,
            via: Via::Local,
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles & role.bit() != 0
    }

    /// Whether this caller may act for `reader`: the local developer and the service role for
    /// anyone, a reader's JWT for its own subject.
    pub fn may_act_for(&self, reader: &str) -> bool {
        self.via == Via::Local
            || self.has(Role::Service)
            || (self.via == Via::Jwt && self.has(Role::Reader) && self.subject == reader)
    }

    /// For logs and `requested_by` fields: who, never a credential.
    pub fn label(&self) -> String {
        match self.via {
            Via::Local => "local".into(),
            _ => format!("{} ({})", self.subject, self.roles_label()),
        }
    }

    fn roles_label(&self) -> String {
        Role::ALL
            .iter()
            .filter(|r| self.has(**r))
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join("+")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Local,
    Enforce,
}

/// The authentication layer of one service; cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    mode: AuthMode,
    tokens: Vec<([u8; 32], Role)>,
    keys: Option<KeyStore>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Auth({:?}, {} static tokens, jwks: {})",
            self.inner.mode,
            self.inner.tokens.len(),
            self.inner
                .keys
                .as_ref()
                .map_or("none".into(), |k| k.describe())
        )
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const REDACTED: &str = "<tokens, not repeated>";

fn parse_tokens(list: &str, mode: AuthMode) -> Result<Vec<([u8; 32], Role)>, ConfigError> {
    let mut tokens = Vec::new();
    let bad = |i: usize, why: &str| {
        ConfigError::invalid(
            NEWSROOM_AUTH_TOKENS,
            REDACTED,
            format!("entry {}: {why}", i + 1),
        )
    };
    for (i, entry) in list
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        let (role, token) = entry
            .split_once(':')
            .ok_or_else(|| bad(i, "expected role:token"))?;
        let role = match Role::parse(role.trim()) {
            Some(Role::Reader) => return Err(bad(i, "a reader has a JWT, never a static token")),
            Some(r) => r,
            None => return Err(bad(i, "the role is editor, source, service or operator")),
        };
        let digest = match token.strip_prefix("sha256:") {
            Some(h) => hex::decode(h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| bad(i, "sha256: needs 64 hex digits"))?,
            None if token.len() < 16 && mode == AuthMode::Enforce => {
                return Err(bad(i, "a token has at least 16 characters"));
            }
            None => hash(token),
        };
        tokens.push((digest, role));
    }
    Ok(tokens)
}

impl Auth {
    /// Reads the `NEWSROOM_AUTH_*` variables. A JWKS file is read at once (a missing or invalid
    /// one is a configuration error); a URL is fetched at the first call that needs it.
    pub fn from_env(env: &Env<'_>, platform: &PlatformConfig) -> Result<Self, ConfigError> {
        Auth::from_env_with(env, platform, false)
    }

    /// As [`Auth::from_env`], for a service that has credentials of its own besides these
    /// (ingest's API keys): `enforce` with neither a JWKS nor a static token is then allowed.
    pub fn from_env_with(
        env: &Env<'_>,
        platform: &PlatformConfig,
        other_credentials: bool,
    ) -> Result<Self, ConfigError> {
        let loopback = platform.grpc_addr.ip().is_loopback();
        let mode = match env.raw(NEWSROOM_AUTH_MODE).as_deref().map(str::trim) {
            None | Some("") if loopback => AuthMode::Local,
            None | Some("") | Some("enforce") | Some("tokens") => AuthMode::Enforce,
            Some("local") if loopback => AuthMode::Local,
            Some("local") => {
                return Err(ConfigError::invalid(
                    NEWSROOM_AUTH_MODE,
                    "local",
                    format!(
                        "local mode (no credential = every role) is refused on the non-loopback \
                         address {}",
                        platform.grpc_addr
                    ),
                ));
            }
            Some(other) => {
                return Err(ConfigError::invalid(
                    NEWSROOM_AUTH_MODE,
                    other,
                    "expected `enforce` or `local`",
                ));
            }
        };
        let tokens = match env.raw(NEWSROOM_AUTH_TOKENS) {
            Some(list) => parse_tokens(&list, mode)?,
            None if mode == AuthMode::Local => vec![
                (hash(LOCAL_EDITOR_TOKEN), Role::Editor),
                (hash(LOCAL_SERVICE_TOKEN), Role::Service),
            ],
            None => Vec::new(),
        };
        let refresh = Duration::from_secs(env.parse(NEWSROOM_AUTH_JWKS_REFRESH_S, 300u64)?.max(1));
        let issuer = env
            .raw(NEWSROOM_AUTH_ISSUER)
            .filter(|s| !s.trim().is_empty());
        let audience = env
            .raw(NEWSROOM_AUTH_AUDIENCE)
            .filter(|s| !s.trim().is_empty());
        let keys = match env.raw(NEWSROOM_AUTH_JWKS).filter(|s| !s.trim().is_empty()) {
            Some(location) => {
                let source = JwksSource::parse(location.trim())
                    .map_err(|why| ConfigError::invalid(NEWSROOM_AUTH_JWKS, &location, why))?;
                let issuer = issuer.ok_or_else(|| {
                    ConfigError::invalid(
                        NEWSROOM_AUTH_ISSUER,
                        "",
                        format!("required with {NEWSROOM_AUTH_JWKS}"),
                    )
                })?;
                let audience = audience.ok_or_else(|| {
                    ConfigError::invalid(
                        NEWSROOM_AUTH_AUDIENCE,
                        "",
                        format!("required with {NEWSROOM_AUTH_JWKS}"),
                    )
                })?;
                let store = KeyStore::new(source, issuer, audience, refresh);
                store
                    .load_now_if_file()
                    .map_err(|why| ConfigError::invalid(NEWSROOM_AUTH_JWKS, &location, why))?;
                Some(store)
            }
            // Local mode trusts the development key `newsroom token` mints with.
            None if mode == AuthMode::Local => Some(KeyStore::new(
                JwksSource::DevDir(dev::dir(env)),
                issuer.unwrap_or_else(|| dev::ISSUER.into()),
                audience.unwrap_or_else(|| dev::AUDIENCE.into()),
                refresh,
            )),
            None => None,
        };
        if mode == AuthMode::Enforce && tokens.is_empty() && keys.is_none() && !other_credentials {
            return Err(ConfigError::invalid(
                NEWSROOM_AUTH_JWKS,
                "",
                format!(
                    "{NEWSROOM_AUTH_MODE}=enforce (the default off loopback) needs \
                     {NEWSROOM_AUTH_JWKS} (with {NEWSROOM_AUTH_ISSUER} and \
                     {NEWSROOM_AUTH_AUDIENCE}) or {NEWSROOM_AUTH_TOKENS}"
                ),
            ));
        }
        Ok(Auth {
            inner: Arc::new(Inner { mode, tokens, keys }),
        })
    }

    pub fn mode(&self) -> AuthMode {
        self.inner.mode
    }

    /// Says once, at start, what the service accepts.
    pub fn log_start(&self) {
        match self.inner.mode {
            AuthMode::Local => tracing::warn!(
                "auth mode is local: calls without a credential act with every role; \
                 {NEWSROOM_AUTH_MODE}=enforce to check every call"
            ),
            AuthMode::Enforce => tracing::info!(auth = ?self, "auth enforced"),
        }
    }

    /// The caller of a request: `Ok(None)` when there is no credential (only in local mode
    /// is that allowed: see [`Auth::authenticate`]).
    async fn credential(&self, metadata: &MetadataMap) -> Result<Option<Principal>, Status> {
        let Some(credential) = bearer(metadata)? else {
            return Ok(None);
        };
        if is_jwt(credential) {
            let keys = self.inner.keys.as_ref().ok_or_else(|| {
                Status::unauthenticated("this service accepts no JWT (no NEWSROOM_AUTH_JWKS)")
            })?;
            return keys.verify(credential).await.map(Some);
        }
        let digest = hash(credential);
        let mut roles = 0u8;
        for (h, r) in &self.inner.tokens {
            if same(h, &digest) {
                roles |= r.bit();
            }
        }
        if roles == 0 {
            return Err(Status::unauthenticated("unknown bearer token"));
        }
        Ok(Some(Principal {
            subject: format!("token:{}", &hex::encode(digest)[..8]),
            roles,
            source: None,
            via: Via::Token,
        }))
    }

    /// Who is calling: the verified credential, or the local developer in local mode.
    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Principal, Status> {
        match self.credential(metadata).await? {
            Some(p) => Ok(p),
            None if self.inner.mode == AuthMode::Local => Ok(Principal::local()),
            None => Err(Status::unauthenticated(
                "missing credentials: send `authorization: Bearer <token>`",
            )),
        }
    }

    /// The caller, if one of its roles is in `allowed`.
    pub async fn require(
        &self,
        metadata: &MetadataMap,
        allowed: &[Role],
    ) -> Result<Principal, Status> {
        let principal = self.authenticate(metadata).await?;
        if allowed.iter().any(|r| principal.has(*r)) {
            return Ok(principal);
        }
        Err(Status::permission_denied(format!(
            "this call needs the {} role",
            allowed
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(" or ")
        )))
    }

    /// The reader a reader-facing call acts for. `named` is the request's user field
    /// (`field` names it in errors): a reader's token acts for its subject (the field empty or
    /// equal to it, `PERMISSION_DENIED` otherwise); the service role acts for the reader it
    /// names, written to the audit log; the local developer for whoever is named. Returns the
    /// reader id, trimmed — empty only when nothing named one and the caller is not a reader
    /// (the service's own validation then says the field is required).
    pub async fn reader(
        &self,
        metadata: &MetadataMap,
        named: &str,
        rpc: &'static str,
    ) -> Result<String, Status> {
        let principal = self.authenticate(metadata).await?;
        self.reader_for(principal, named, rpc)
    }

    /// [`Auth::reader`] for a caller already authenticated (a call that also needs the
    /// principal itself verifies its credential once).
    pub fn reader_for(
        &self,
        principal: Principal,
        named: &str,
        rpc: &'static str,
    ) -> Result<String, Status> {
        let named = named.trim();
        if principal.via == Via::Local {
            return Ok(named.to_owned());
        }
        if named.is_empty() && principal.via == Via::Jwt && principal.has(Role::Reader) {
            return Ok(principal.subject);
        }
        if named.is_empty() && principal.has(Role::Service) {
            return Ok(String::new());
        }
        self.owner(&principal, named, rpc)?;
        Ok(named.to_owned())
    }

    /// Whether `principal` may act on what belongs to `reader` (a device, a stream): a reader
    /// only on their own, the service role on anyone's (audited), the local developer always.
    pub fn owner(
        &self,
        principal: &Principal,
        reader: &str,
        rpc: &'static str,
    ) -> Result<(), Status> {
        if principal.may_act_for(reader) {
            if principal.via != Via::Local
                && !(principal.has(Role::Reader) && principal.subject == reader)
            {
                tracing::info!(
                    target: "newsroom::audit",
                    rpc, caller = %principal.subject, reader = %reader,
                    "service acting for a reader"
                );
            }
            return Ok(());
        }
        if principal.has(Role::Reader) && principal.via == Via::Jwt {
            return Err(Status::permission_denied(
                "a reader's token acts only for its own reader (its subject)",
            ));
        }
        Err(Status::permission_denied(
            "this call needs the reader or service role",
        ))
    }
}

/// The credential of `authorization: Bearer <credential>`: `None` without the header,
/// `UNAUTHENTICATED` when it is not a bearer credential.
pub fn bearer(metadata: &MetadataMap) -> Result<Option<&str>, Status> {
    let Some(value) = metadata.get("authorization") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Some)
        .ok_or_else(|| {
            Status::unauthenticated("the authorization header is not `Bearer <credential>`")
        })
}

/// Whether a bearer credential is a JWT (three dot-separated parts) rather than a static token.
pub fn is_jwt(credential: &str) -> bool {
    credential.bytes().filter(|b| *b == b'.').count() == 2
}

impl Auth {
    /// A reader-facing request with its user field (`field`) replaced by the reader the
    /// credential acts for ([`Auth::reader`]).
    pub async fn reader_request<T>(
        &self,
        request: tonic::Request<T>,
        rpc: &'static str,
        field: fn(&mut T) -> &mut String,
    ) -> Result<T, Status> {
        let (metadata, _, mut inner) = request.into_parts();
        let reader = self.reader(&metadata, field(&mut inner), rpc).await?;
        *field(&mut inner) = reader;
        Ok(inner)
    }
}

#[cfg(test)]
mod tests;
