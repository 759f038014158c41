//! Who is using the page: a session kept in a signed cookie (web keeps no state of its own),
//! and the caller of a JSON API request (that session, or a reader's bearer token passed on to
//! the services, which check it).
//!
//! The cookie holds the reader's id, whether they are an editor, and when the session ends
//! (12 hours after sign-in), signed with the deployment's key (HMAC-SHA256 by the `cookie`
//! crate): a client can read it but not forge or extend it. `HttpOnly`, `SameSite=Lax`, and
//! `Secure` off loopback.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::extract::SignedCookieJar;
use axum_extra::extract::cookie::{Cookie, Key, SameSite};

use crate::error::WebError;
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "newsroom_session";
/// How long a session lasts, in seconds.
pub const SESSION_SECS: i64 = 12 * 3600;

/// A signed-in reader (an editor is a reader with the console too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub editor: bool,
    pub expires_at: i64,
}

impl Session {
    pub fn new(user: String, editor: bool) -> Self {
        Session {
            user,
            editor,
            expires_at: chrono::Utc::now().timestamp() + SESSION_SECS,
        }
    }

    fn encode(&self) -> String {
        let role = if self.editor { "editor" } else { "reader" };
        format!("{}|{role}|{}", self.user, self.expires_at)
    }

    fn decode(value: &str, now: i64) -> Option<Session> {
        let mut parts = value.rsplitn(3, '|');
        let expires_at: i64 = parts.next()?.parse().ok()?;
        let editor = match parts.next()? {
            "editor" => true,
            "reader" => false,
            _ => return None,
        };
        let user = parts.next()?.to_owned();
        (expires_at > now && valid_user(&user).is_ok()).then_some(Session {
            user,
            editor,
            expires_at,
        })
    }

    /// The jar with this session's cookie set.
    pub fn store(&self, jar: SignedCookieJar, secure: bool) -> SignedCookieJar {
        let mut c = Cookie::new(COOKIE, self.encode());
        c.set_http_only(true);
        c.set_same_site(SameSite::Lax);
        c.set_secure(secure);
        c.set_path("/");
        c.set_expires(time_secs(SESSION_SECS));
        jar.add(c)
    }

    /// The jar without a session.
    pub fn clear(jar: SignedCookieJar) -> SignedCookieJar {
        let mut c = Cookie::from(COOKIE);
        c.set_path("/");
        jar.remove(c)
    }

    /// The session of a request's cookies, if signed by this deployment and not expired.
    pub fn of(jar: &SignedCookieJar) -> Option<Session> {
        let c = jar.get(COOKIE)?;
        Session::decode(c.value(), chrono::Utc::now().timestamp())
    }
}

fn time_secs(s: i64) -> axum_extra::extract::cookie::Expiration {
    let at = std::time::SystemTime::now() + std::time::Duration::from_secs(s.max(0) as u64);
    axum_extra::extract::cookie::Expiration::DateTime(at.into())
}

/// A reader id as a sign-in form or an API takes it: 1 to 64 of letters, digits and `._@-`.
pub fn valid_user(user: &str) -> Result<(), String> {
    if user.is_empty() || user.len() > 64 {
        return Err("expected 1 to 64 characters".to_owned());
    }
    if !user
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
    {
        return Err("expected letters, digits and . _ @ - only".to_owned());
    }
    Ok(())
}

/// Who a JSON API request acts for.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A signed-in page's session: web calls the services with its `service` credential for
    /// this reader.
    Session(Session),
    /// An app's reader token (`Authorization: Bearer`), passed on: the services verify it and
    /// take the reader from it.
    Bearer(String),
}

impl Caller {
    /// The reader id to put in requests ("" for a bearer token: the token says who).
    pub fn user(&self) -> &str {
        match self {
            Caller::Session(s) => &s.user,
            Caller::Bearer(_) => "",
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        if let Some(h) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let token = h
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty() && t.is_ascii())
                .ok_or(WebError::Unauthenticated(
                    "authorization: expected Bearer <token>",
                ))?;
            return Ok(Caller::Bearer(token.to_owned()));
        }
        let jar = SignedCookieJar::<Key>::from_headers(&parts.headers, state.key.clone());
        Session::of(&jar)
            .map(Caller::Session)
            .ok_or(WebError::Unauthenticated(
                "sign in, or send Authorization: Bearer <token>",
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_round_trips_and_ends() {
        let s = Session {
            user: "ada@example".into(),
            editor: true,
            expires_at: 2_000,
        };
        assert_eq!(Session::decode(&s.encode(), 1_000), Some(s.clone()));
        assert_eq!(Session::decode(&s.encode(), 2_000), None, "expired");
        assert_eq!(Session::decode("a|admin|3000", 1_000), None);
        assert_eq!(Session::decode("bad user|reader|3000", 1_000), None);
    }

    #[test]
    fn reader_ids_are_checked() {
        assert!(valid_user("demo").is_ok());
        assert!(valid_user("").is_err());
        assert!(valid_user("a b").is_err());
        assert!(valid_user(&"x".repeat(65)).is_err());
    }
}
