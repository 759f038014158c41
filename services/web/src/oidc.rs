//! Sign-in with the deployment's OpenID Connect provider: the authorization code flow with PKCE
//! (RFC 7636, S256).
//!
//! `GET /signin/oidc` reads the provider's discovery document (once, then cached), makes a
//! state, a nonce and a code verifier, keeps them for 10 minutes in a signed, `HttpOnly` cookie
//! (web keeps no state), and redirects to the provider. `GET /signin/oidc/callback` checks the
//! state, exchanges the code (with the verifier) at the token endpoint, verifies the ID token
//! with the platform's JWKS verifier (signature, issuer, audience = the client id, expiry, and
//! the nonce), and starts a session for its subject (its `preferred_username` when that is a
//! valid reader id). An ID token whose `roles` include `editor` opens the console.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::SignedCookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use newsroom_platform::auth::{JwksSource, KeyStore, Role};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;

use crate::error::WebError;
use crate::pages::PageError;
use crate::session::{Session, valid_user};
use crate::state::AppState;

const FLOW_COOKIE: &str = "newsroom_oidc";
const FLOW_SECS: i64 = 600;

/// The provider as configured.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back: `<web>/signin/oidc/callback`; `None` (loopback
    /// only): the host the browser used.
    pub redirect_url: Option<String>,
    /// The name the sign-in page shows ("Newsroom SSO").
    pub name: String,
}

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// The provider, discovered.
pub struct Provider {
    discovery: Discovery,
    keys: KeyStore,
}

/// The provider, discovered once per process.
#[derive(Default, Clone)]
pub struct Oidc(Arc<OnceCell<Provider>>);

impl Oidc {
    async fn provider(
        &self,
        config: &OidcConfig,
        http: &reqwest::Client,
    ) -> Result<&Provider, WebError> {
        self.0
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    config.issuer.trim_end_matches('/')
                );
                let discovery: Discovery = http
                    .get(&url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| unavailable(format!("discovery: {e}")))?
                    .json()
                    .await
                    .map_err(|e| unavailable(format!("discovery document: {e}")))?;
                if discovery.issuer.trim_end_matches('/') != config.issuer.trim_end_matches('/') {
                    return Err(unavailable(
                        "the discovery document names another issuer".into(),
                    ));
                }
                if !discovery.jwks_uri.starts_with("https://")
                    && !discovery.jwks_uri.starts_with("http://")
                {
                    return Err(unavailable("jwks_uri is not an http(s) URL".into()));
                }
                let source = JwksSource::parse(&discovery.jwks_uri).map_err(unavailable)?;
                let keys = KeyStore::new(
                    source,
                    discovery.issuer.clone(),
                    config.client_id.clone(),
                    Duration::from_secs(300),
                );
                Ok(Provider { discovery, keys })
            })
            .await
    }
}

fn unavailable(why: String) -> WebError {
    tracing::warn!(%why, "the identity provider cannot be used");
    WebError::Upstream(tonic::Status::unavailable(
        "the sign-in provider is unavailable",
    ))
}

fn random() -> String {
    // Two version-4 UUIDs: 244 random bits, in the characters PKCE allows.
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The callback URL the provider is given (the same at the start and at the exchange).
fn redirect_url(config: &OidcConfig, headers: &HeaderMap) -> Result<String, WebError> {
    if let Some(u) = &config.redirect_url {
        return Ok(u.clone());
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.starts_with("127.0.0.1:") || h.starts_with("localhost:") || h.starts_with("[::1]:")
        })
        .ok_or_else(|| {
            WebError::invalid(
                "host",
                "sign-in from a loopback address only, or set NEWSROOM_WEB_OIDC_REDIRECT_URL",
            )
        })?;
    Ok(format!("http://{host}/signin/oidc/callback"))
}

/// `GET /signin/oidc`: to the provider.
pub async fn start(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let config = state.config.oidc.clone().ok_or(WebError::NotFound(
        "no OpenID Connect provider is configured".into(),
    ))?;
    let provider = state.oidc.provider(&config, &state.http).await?;
    let redirect = redirect_url(&config, &headers)?;
    let (flow_state, nonce, verifier) = (random(), random(), random());
    let mut url = reqwest::Url::parse(&provider.discovery.authorization_endpoint)
        .map_err(|e| unavailable(format!("authorization_endpoint: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &config.client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile")
        .append_pair("state", &flow_state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    let expires = chrono::Utc::now().timestamp() + FLOW_SECS;
    let mut c = Cookie::new(
        FLOW_COOKIE,
        format!("{flow_state}|{nonce}|{verifier}|{expires}"),
    );
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(state.secure_cookies());
    c.set_path("/signin/oidc");
    Ok((jar.add(c), Redirect::to(url.as_str())).into_response())
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
}

#[derive(Deserialize)]
struct Profile {
    preferred_username: Option<String>,
}

/// `GET /signin/oidc/callback`: back from the provider.
pub async fn callback(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Result<Response, PageError> {
    let config = state.config.oidc.clone().ok_or(WebError::NotFound(
        "no OpenID Connect provider is configured".into(),
    ))?;
    if let Some(e) = q.error {
        return Err(
            WebError::invalid("error", format!("the provider refused the sign-in: {e}")).into(),
        );
    }
    let flow = jar
        .get(FLOW_COOKIE)
        .map(|c| c.value().to_owned())
        .ok_or_else(|| WebError::invalid("state", "no sign-in under way in this browser"))?;
    let parts: Vec<&str> = flow.split('|').collect();
    let [expected_state, nonce, verifier, expires] = parts[..] else {
        return Err(WebError::invalid("state", "no sign-in under way in this browser").into());
    };
    if expires.parse::<i64>().unwrap_or(0) < chrono::Utc::now().timestamp() {
        return Err(WebError::invalid("state", "the sign-in took too long; start again").into());
    }
    if q.state.as_deref() != Some(expected_state) {
        return Err(WebError::invalid("state", "not this browser's sign-in").into());
    }
    let code = q
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| WebError::invalid("code", "required"))?;
    let provider = state.oidc.provider(&config, &state.http).await?;
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", redirect_url(&config, &headers)?),
        ("client_id", config.client_id.clone()),
        ("code_verifier", verifier.to_owned()),
    ];
    if let Some(secret) = &config.client_secret {
        form.push(("client_secret", secret.clone()));
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let tokens: TokenResponse = state
        .http
        .post(&provider.discovery.token_endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| unavailable(format!("token endpoint: {e}")))?
        .json()
        .await
        .map_err(|e| unavailable(format!("token response: {e}")))?;
    let principal = provider
        .keys
        .verify_id_token(&tokens.id_token, nonce)
        .await
        .map_err(|s| {
            tracing::warn!(why = s.message(), "an ID token was refused");
            WebError::Unauthenticated("the provider's ID token did not verify")
        })?;
    let preferred = id_token_claims(&tokens.id_token)
        .and_then(|p| p.preferred_username)
        .filter(|u| valid_user(u).is_ok());
    let user = preferred.unwrap_or_else(|| principal.subject.clone());
    valid_user(&user).map_err(|r| WebError::invalid("sub", r))?;
    let session = Session::new(user, principal.has(Role::Editor));
    let mut done = Cookie::from(FLOW_COOKIE);
    done.set_path("/signin/oidc");
    let jar = session.store(jar.remove(done), state.secure_cookies());
    Ok((jar, Redirect::to("/")).into_response())
}

/// The claims of a token already verified (its payload, for the profile fields).
fn id_token_claims(token: &str) -> Option<Profile> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let v = random();
        assert!(v.len() >= 43 && v.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(random(), v);
        assert_eq!(urlencode("a b/c"), "a%20b%2Fc");
    }
}
