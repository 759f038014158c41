//! The JWT signing keys of a deployment (a JWKS), re-read when stale or when a token names a
//! key id not seen yet, and the verification of one token against them.

use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tonic::Status;

use super::{Principal, Role, Via};

/// Where the keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
    /// The development key's directory (local mode): no file yet is no key yet.
    DevDir(PathBuf),
}

impl JwksSource {
    pub fn parse(location: &str) -> Result<Self, String> {
        if location.starts_with("http://") || location.starts_with("https://") {
            url::Url::parse(location).map_err(|e| format!("not a URL: {e}"))?;
            return Ok(JwksSource::Url(location.to_owned()));
        }
        Ok(JwksSource::File(PathBuf::from(location)))
    }
}

/// Most bytes a JWKS document may have.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Unknown key ids trigger a re-read at most this often (a stream of forged kids cannot turn
/// into a stream of fetches).
const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(2);
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_S: u64 = 30;
/// Longest subject (a reader id) accepted.
const MAX_SUBJECT_BYTES: usize = 128;

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct State {
    keys: Vec<std::sync::Arc<Key>>,
    loaded_at: Option<Instant>,
}

/// The keys of one JWKS and what a token must say to be accepted.
pub struct KeyStore {
    source: JwksSource,
    issuer: String,
    audience: String,
    refresh: Duration,
    state: RwLock<State>,
    reload: tokio::sync::Mutex<()>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    source: Option<String>,
    /// An OpenID Connect ID token's nonce.
    #[serde(default)]
    nonce: Option<String>,
}

fn algorithm_of(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    match jwk.common.key_algorithm {
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
        Some(_) => None,
        None => match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Some(Algorithm::ES256)
            }
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                Some(Algorithm::EdDSA)
            }
            _ => None,
        },
    }
}

/// The usable keys of a JWKS document: RS256, ES256 and EdDSA public keys; anything else
/// (symmetric keys, other algorithms) is skipped.
fn parse(document: &[u8]) -> Result<Vec<std::sync::Arc<Key>>, String> {
    let set: JwkSet =
        serde_json::from_slice(document).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let Some(alg) = algorithm_of(jwk) else {
            tracing::warn!(kid = ?jwk.common.key_id, "JWKS key skipped: not RS256, ES256 or EdDSA");
            continue;
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => keys.push(std::sync::Arc::new(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            })),
            Err(e) => tracing::warn!(kid = ?jwk.common.key_id, error = %e, "JWKS key skipped"),
        }
    }
    Ok(keys)
}

impl KeyStore {
    pub fn new(source: JwksSource, issuer: String, audience: String, refresh: Duration) -> Self {
        KeyStore {
            source,
            issuer,
            audience,
            refresh,
            state: RwLock::new(State::default()),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    pub(super) fn describe(&self) -> String {
        match &self.source {
            JwksSource::File(p) => format!("file {}", p.display()),
            JwksSource::Url(u) => format!("url {u}"),
            JwksSource::DevDir(d) => format!("dev key in {}", d.display()),
        }
    }

    /// Reads a JWKS file now (at start, so that a bad file is a configuration error).
    pub(super) fn load_now_if_file(&self) -> Result<(), String> {
        if let JwksSource::File(path) = &self.source {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
            let keys = parse(&bytes)?;
            if keys.is_empty() {
                return Err("no RS256, ES256 or EdDSA key in it".into());
            }
            self.install(keys);
        }
        Ok(())
    }

    fn install(&self, keys: Vec<std::sync::Arc<Key>>) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.keys = keys;
        state.loaded_at = Some(Instant::now());
    }

    fn mark_tried(&self) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.loaded_at = Some(Instant::now());
    }

    async fn fetch(&self) -> Result<Vec<std::sync::Arc<Key>>, String> {
        let bytes = match &self.source {
            // Small local files: read in place.
            JwksSource::File(path) => {
                std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?
            }
            JwksSource::DevDir(dir) => match std::fs::read(dir.join(super::dev::JWKS_FILE)) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(format!("{}: {e}", dir.display())),
            },
            JwksSource::Url(url) => {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| e.to_string())?;
                let response = client
                    .get(url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| format!("{url}: {e}"))?;
                if response
                    .content_length()
                    .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
                {
                    return Err(format!("{url}: larger than {MAX_JWKS_BYTES} bytes"));
                }
                let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
                bytes.to_vec()
            }
        };
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
        }
        parse(&bytes)
    }

    /// Re-reads the keys unless another call did so within `min_age`; a failed read keeps the
    /// keys there were.
    async fn reload(&self, min_age: Duration) {
        let _one_at_a_time = self.reload.lock().await;
        let fresh = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            state.loaded_at.is_some_and(|t| t.elapsed() < min_age)
        };
        if fresh {
            return;
        }
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(keys = keys.len(), source = %self.describe(), "JWKS read");
                self.install(keys);
            }
            Err(why) => {
                tracing::warn!(source = %self.describe(), error = %why, "JWKS not re-read; keeping the keys there were");
                self.mark_tried();
            }
        }
    }

    fn find(&self, kid: Option<&str>, alg: Algorithm) -> (Option<std::sync::Arc<Key>>, bool) {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let stale = state.loaded_at.is_none_or(|t| t.elapsed() >= self.refresh);
        let key = state
            .keys
            .iter()
            .find(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
            .cloned();
        (key, stale)
    }

    /// Verifies an OpenID Connect ID token as [`KeyStore::verify`] does a JWT (this store's
    /// audience is the client id), and that its `nonce` is the one the sign-in sent.
    pub async fn verify_id_token(&self, token: &str, nonce: &str) -> Result<Principal, Status> {
        let (principal, claims) = self.verify_claims(token).await?;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(Status::unauthenticated(
                "ID token nonce is not this sign-in's",
            ));
        }
        Ok(principal)
    }

    /// Verifies a JWT: signature by a key of the set, algorithm of that key, issuer, audience,
    /// expiry (and `nbf`), subject. Errors never repeat the token.
    pub async fn verify(&self, token: &str) -> Result<Principal, Status> {
        Ok(self.verify_claims(token).await?.0)
    }

    async fn verify_claims(&self, token: &str) -> Result<(Principal, Claims), Status> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Status::unauthenticated("malformed JWT"))?;
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) {
            return Err(Status::unauthenticated(format!(
                "JWT algorithm {:?} is not accepted (RS256, ES256, EdDSA)",
                header.alg
            )));
        }
        let kid = header.kid.as_deref();
        let (mut key, stale) = self.find(kid, header.alg);
        if stale {
            self.reload(self.refresh).await;
            key = self.find(kid, header.alg).0;
        }
        if key.is_none() {
            // A key rotated in since the last read.
            self.reload(MIN_RELOAD_INTERVAL).await;
            key = self.find(kid, header.alg).0;
        }
        let key = key.ok_or_else(|| {
            Status::unauthenticated("JWT signed by a key this deployment does not know")
        })?;
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_S;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                let why = match e.kind() {
                    K::ExpiredSignature => "JWT expired".to_owned(),
                    K::ImmatureSignature => "JWT not valid yet (nbf)".to_owned(),
                    K::InvalidIssuer => "JWT issuer is not this deployment's".to_owned(),
                    K::InvalidAudience => "JWT audience is not this deployment's".to_owned(),
                    K::InvalidSignature => "JWT signature does not verify".to_owned(),
                    K::MissingRequiredClaim(c) => format!("JWT lacks the {c} claim"),
                    _ => "invalid JWT".to_owned(),
                };
                Status::unauthenticated(why)
            })?
            .claims;
        let subject = claims.sub.trim();
        if subject.is_empty() || subject.len() > MAX_SUBJECT_BYTES {
            return Err(Status::unauthenticated(format!(
                "JWT subject: 1 to {MAX_SUBJECT_BYTES} bytes"
            )));
        }
        let mut roles = 0u8;
        if claims.roles.is_empty() {
            roles = Role::Reader.bit();
        }
        for name in &claims.roles {
            if let Some(r) = Role::parse(name) {
                roles |= r.bit();
            }
        }
        let principal = Principal {
            subject: subject.to_owned(),
            roles,
            source: claims.source.clone().filter(|s| !s.trim().is_empty()),
            via: Via::Jwt,
        };
        Ok((principal, claims))
    }
}
