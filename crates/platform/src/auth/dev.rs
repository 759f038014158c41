//! The development signing key: `newsroom token` mints JWTs with it so that the README's
//! examples (and the tests) can act as a reader, an editor or a service against the local
//! stack; services in local mode trust its public half (`jwks.json` in the same directory).
//!
//! The key is an Ed25519 key made on first use, kept in `NEWSROOM_DEV_AUTH_DIR` (default
//! `$XDG_CACHE_HOME/newsroom/dev-auth`, else `~/.cache/newsroom/dev-auth`), readable only by its
//! owner. It is never trusted in `enforce` mode unless an operator points `NEWSROOM_AUTH_JWKS`
//! at it — which a production deployment has no reason to do.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::config::Env;

/// Where the development key lives.
pub const NEWSROOM_DEV_AUTH_DIR: &str = "NEWSROOM_DEV_AUTH_DIR";
/// The development tokens' issuer.
pub const ISSUER: &str = "newsroom-dev";
/// The development tokens' audience.
pub const AUDIENCE: &str = "newsroom";
/// The private key's file in the directory.
pub const KEY_FILE: &str = "signing-key.json";
/// The public JWKS's file in the directory.
pub const JWKS_FILE: &str = "jwks.json";

/// The directory of the development key.
pub fn dir(env: &Env<'_>) -> PathBuf {
    if let Some(d) = env
        .raw(NEWSROOM_DEV_AUTH_DIR)
        .filter(|d| !d.trim().is_empty())
    {
        return PathBuf::from(d);
    }
    let cache = env
        .raw("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| env.raw("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("newsroom").join("dev-auth")
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    kid: String,
    /// The Ed25519 seed, base64url.
    d: String,
}

/// An Ed25519 signing key and its key id.
pub struct DevKey {
    kid: String,
    seed: [u8; 32],
}

impl std::fmt::Debug for DevKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DevKey({})", self.kid)
    }
}

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub subject: String,
    /// Empty = a reader.
    pub roles: Vec<String>,
    pub source: Option<String>,
    pub ttl: Duration,
    pub issuer: String,
    pub audience: String,
    /// An OpenID Connect ID token's `nonce` (a test identity provider mints those).
    pub nonce: Option<String>,
}

impl TokenSpec {
    /// A development token for `subject` with `roles`, valid for an hour.
    pub fn new(subject: &str, roles: &[&str]) -> Self {
        TokenSpec {
            subject: subject.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            source: None,
            ttl: Duration::from_secs(3600),
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            nonce: None,
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
}

/// PKCS #8 v1 of an Ed25519 private key is this fixed prefix and the 32-byte seed (RFC 8410 §7).
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

impl DevKey {
    /// A new random key.
    pub fn generate() -> std::io::Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(std::io::Error::other)?;
        let mut kid = [0u8; 8];
        getrandom::fill(&mut kid).map_err(std::io::Error::other)?;
        Ok(DevKey {
            kid: format!("dev-{}", hex::encode(kid)),
            seed,
        })
    }

    /// The key in `dir`, made (with its `jwks.json`) when there is none.
    pub fn load_or_create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let file: KeyFile =
                    serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
                let seed = URL_SAFE_NO_PAD
                    .decode(&file.d)
                    .ok()
                    .and_then(|s| <[u8; 32]>::try_from(s).ok())
                    .ok_or_else(|| {
                        std::io::Error::other(format!("{}: not a key", path.display()))
                    })?;
                let key = DevKey {
                    kid: file.kid,
                    seed,
                };
                if !dir.join(JWKS_FILE).exists() {
                    key.write_jwks(&dir.join(JWKS_FILE))?;
                }
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                let key = DevKey::generate()?;
                let file = KeyFile {
                    kid: key.kid.clone(),
                    d: URL_SAFE_NO_PAD.encode(key.seed),
                };
                write_private(
                    &path,
                    &serde_json::to_vec(&file).map_err(std::io::Error::other)?,
                )?;
                key.write_jwks(&dir.join(JWKS_FILE))?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        let public = ed25519_dalek::SigningKey::from_bytes(&self.seed)
            .verifying_key()
            .to_bytes();
        serde_json::json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": self.kid, "x": URL_SAFE_NO_PAD.encode(public),
        }]})
    }

    /// Writes [`DevKey::jwks`] to `path` (atomically).
    pub fn write_jwks(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.jwks().to_string())?;
        std::fs::rename(tmp, path)
    }

    /// A signed JWT.
    pub fn mint(&self, spec: &TokenSpec) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            iss: &spec.issuer,
            aud: &spec.audience,
            sub: &spec.subject,
            iat: now,
            exp: now + spec.ttl.as_secs(),
            roles: &spec.roles,
            source: spec.source.as_deref(),
            nonce: spec.nonce.as_deref(),
        };
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(&self.seed);
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&der))
            .expect("an Ed25519 key from a 32-byte seed always signs")
    }
}
