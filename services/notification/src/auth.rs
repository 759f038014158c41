//! Who may call what: bearer tokens with configured roles.
//!
//! - `SendAlert` needs the `editor` role;
//! - `RegisterDevice`, `UnregisterDevice`, `UpdatePreferences` and `StreamAlerts` need the
//!   `service` role (the reader-facing backend);
//! - `GetAlert` needs either.
//!
//! Tokens are configured in `NEWSROOM_AUTH_TOKENS` as `role:token` pairs, comma-separated; a
//! token may also be given as `role:sha256:<hex>` so that the configuration holds only its hash.
//! Only SHA-256 hashes are kept in memory and compared (in constant time); a token never
//! appears in a log line, an error or a `Debug` output.
//!
//! `NEWSROOM_AUTH_MODE`:
//! - `tokens` (the default when the gRPC address is not loopback): every call needs a valid
//!   token with the right role — `UNAUTHENTICATED` when missing or unknown, `PERMISSION_DENIED`
//!   when its role does not allow the call. Starting in this mode without an editor and a
//!   service token is a configuration error.
//! - `local` (the default on a loopback address, i.e. a developer's machine and the tests): a
//!   call without a token acts as a local developer with every role, so the local stack works out
//!   of the box; a call with a token is checked as above. Unless `NEWSROOM_AUTH_TOKENS` says
//!   otherwise, the local tokens are `newsroom-local-editor` and `newsroom-local-service`.

use std::fmt;

use newsroom_platform::PlatformConfig;
use newsroom_platform::config::{ConfigError, Env};
use sha2::{Digest as _, Sha256};
use tonic::Status;
use tonic::metadata::MetadataMap;

/// `tokens` or `local`; see the module documentation.
pub const NEWSROOM_AUTH_MODE: &str = "NEWSROOM_AUTH_MODE";
/// `role:token` pairs, comma-separated (`editor:…,service:…`, or `service:sha256:<hex>`).
pub const NEWSROOM_AUTH_TOKENS: &str = "NEWSROOM_AUTH_TOKENS";

/// The local stack's editor token (only in `local` mode, only when no tokens are configured).
pub const LOCAL_EDITOR_TOKEN: &str = "newsroom-local-editor";
/// The local stack's service token (idem).
pub const LOCAL_SERVICE_TOKEN: &str = "newsroom-local-service";

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A newsroom editor: may send alerts.
    Editor,
    /// The reader-facing backend: devices, preferences, in-app streams.
    Service,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Editor => "editor",
            Role::Service => "service",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Local,
    Tokens,
}

/// The token table.
#[derive(Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    tokens: Vec<([u8; 32], Role)>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AuthConfig({:?}, {} tokens)",
            self.mode,
            self.tokens.len()
        )
    }
}

/// Who is calling, as far as logs may tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No token, in local mode.
    Local,
    /// A token with this role.
    Token(Role),
}

impl Caller {
    /// For logs and `AlertRequest.requested_by`.
    pub fn label(self) -> &'static str {
        match self {
            Caller::Local => "local",
            Caller::Token(r) => r.name(),
        }
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AuthConfig {
    pub fn from_env(env: &Env<'_>, platform: &PlatformConfig) -> Result<Self, ConfigError> {
        let mode = match env.raw(NEWSROOM_AUTH_MODE).as_deref().map(str::trim) {
            None if platform.grpc_addr.ip().is_loopback() => AuthMode::Local,
            None => AuthMode::Tokens,
            Some("local") => AuthMode::Local,
            Some("tokens") => AuthMode::Tokens,
            Some(other) => {
                return Err(ConfigError::invalid(
                    NEWSROOM_AUTH_MODE,
                    other,
                    "expected `tokens` or `local`",
                ));
            }
        };
        let redacted = "<tokens, not repeated>";
        let mut tokens = Vec::new();
        match env.raw(NEWSROOM_AUTH_TOKENS) {
            Some(list) => {
                for (i, entry) in list.split(',').map(str::trim).enumerate() {
                    let Some((role, token)) = entry.split_once(':') else {
                        return Err(ConfigError::invalid(
                            NEWSROOM_AUTH_TOKENS,
                            redacted,
                            format!("entry {}: expected role:token", i + 1),
                        ));
                    };
                    let role = match role.trim() {
                        "editor" => Role::Editor,
                        "service" => Role::Service,
                        _ => {
                            return Err(ConfigError::invalid(
                                NEWSROOM_AUTH_TOKENS,
                                redacted,
                                format!("entry {}: the role is `editor` or `service`", i + 1),
                            ));
                        }
                    };
                    let digest = match token.strip_prefix("sha256:") {
                        Some(h) => hex::decode(h)
                            .ok()
                            .and_then(|b| <[u8; 32]>::try_from(b).ok())
                            .ok_or_else(|| {
                                ConfigError::invalid(
                                    NEWSROOM_AUTH_TOKENS,
                                    redacted,
                                    format!("entry {}: sha256: needs 64 hex digits", i + 1),
                                )
                            })?,
                        None if token.len() < 16 && mode == AuthMode::Tokens => {
                            return Err(ConfigError::invalid(
                                NEWSROOM_AUTH_TOKENS,
                                redacted,
                                format!("entry {}: a token has at least 16 characters", i + 1),
                            ));
                        }
                        None => hash(token),
                    };
                    tokens.push((digest, role));
                }
            }
            None if mode == AuthMode::Local => {
                tokens.push((hash(LOCAL_EDITOR_TOKEN), Role::Editor));
                tokens.push((hash(LOCAL_SERVICE_TOKEN), Role::Service));
            }
            None => {}
        }
        if mode == AuthMode::Tokens {
            for role in [Role::Editor, Role::Service] {
                if !tokens.iter().any(|(_, r)| *r == role) {
                    return Err(ConfigError::invalid(
                        NEWSROOM_AUTH_TOKENS,
                        redacted,
                        format!(
                            "no {} token: with {NEWSROOM_AUTH_MODE}=tokens (the default off loopback) \
                             every role needs one",
                            role.name()
                        ),
                    ));
                }
            }
        }
        Ok(AuthConfig { mode, tokens })
    }

    /// Checks the call's bearer token against the roles that may make it.
    pub fn authorize(&self, metadata: &MetadataMap, allowed: &[Role]) -> Result<Caller, Status> {
        let Some(value) = metadata.get("authorization") else {
            return match self.mode {
                AuthMode::Local => Ok(Caller::Local),
                AuthMode::Tokens => Err(Status::unauthenticated(
                    "missing credentials: send `authorization: Bearer <token>`",
                )),
            };
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated("the authorization header is not `Bearer <token>`")
            })?;
        let digest = hash(token);
        let roles: Vec<Role> = self
            .tokens
            .iter()
            .filter(|(h, _)| same(h, &digest))
            .map(|(_, r)| *r)
            .collect();
        if roles.is_empty() {
            return Err(Status::unauthenticated("unknown bearer token"));
        }
        match roles.iter().find(|r| allowed.contains(r)) {
            Some(role) => Ok(Caller::Token(*role)),
            None => Err(Status::permission_denied(format!(
                "this call needs the {} role",
                allowed
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn auth(pairs: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry("NEWSROOM_GRPC_ADDR".into())
            .or_insert("0.0.0.0:50054".into());
        let env = Env::from_fn(|k| map.get(k).cloned());
        let platform = PlatformConfig::from_env(&env, "notification", 50054).unwrap();
        AuthConfig::from_env(&env, &platform)
    }

    fn md(token: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(t) = token {
            m.insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        m
    }

    const EDITOR: &str = "editor-token-0123456789";
    const SERVICE: &str = "service-token-0123456789";

    #[test]
    fn off_loopback_every_call_needs_a_token_with_the_right_role() {
        let hashed = hex::encode(Sha256::digest(SERVICE.as_bytes()));
        let a = auth(&[(
            NEWSROOM_AUTH_TOKENS,
            &format!("editor:{EDITOR},service:sha256:{hashed}"),
        )])
        .unwrap();
        assert_eq!(a.mode, AuthMode::Tokens);
        let send_alert = [Role::Editor];
        assert_eq!(
            a.authorize(&md(Some(EDITOR)), &send_alert).unwrap(),
            Caller::Token(Role::Editor)
        );
        let e = a.authorize(&md(None), &send_alert).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        let e = a
            .authorize(&md(Some("wrong-token-0123456789")), &send_alert)
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(!e.message().contains("wrong-token"));
        let e = a.authorize(&md(Some(SERVICE)), &send_alert).unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            a.authorize(&md(Some(SERVICE)), &[Role::Service]).unwrap(),
            Caller::Token(Role::Service)
        );
    }

    #[test]
    fn tokens_mode_without_tokens_is_a_config_error_that_echoes_nothing() {
        let err = auth(&[]).unwrap_err().to_string();
        assert!(err.starts_with(NEWSROOM_AUTH_TOKENS), "{err}");
        let err = auth(&[(NEWSROOM_AUTH_TOKENS, "admin:supersecret-supersecret")])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("supersecret"), "{err}");
        let err = auth(&[(NEWSROOM_AUTH_MODE, "open")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(NEWSROOM_AUTH_MODE), "{err}");
    }

    #[test]
    fn on_loopback_the_local_stack_works_without_a_token_but_checks_one_given() {
        let a = auth(&[("NEWSROOM_GRPC_ADDR", "127.0.0.1:50054")]).unwrap();
        assert_eq!(a.mode, AuthMode::Local);
        assert_eq!(
            a.authorize(&md(None), &[Role::Editor]).unwrap(),
            Caller::Local
        );
        assert_eq!(
            a.authorize(&md(Some(LOCAL_EDITOR_TOKEN)), &[Role::Editor])
                .unwrap(),
            Caller::Token(Role::Editor)
        );
        let e = a
            .authorize(&md(Some(LOCAL_SERVICE_TOKEN)), &[Role::Editor])
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        let e = a.authorize(&md(Some("nope")), &[Role::Editor]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(!format!("{a:?}").contains("newsroom-local"));
    }
}
