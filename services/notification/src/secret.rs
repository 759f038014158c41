//! Secrets in configuration: webhook HMAC keys, VAPID, APNs and FCM private keys.
//!
//! A secret is written in the channel configuration in one of three ways, so that a Kubernetes
//! secret can be mounted as a file or passed as an environment variable without the value ever
//! appearing in the configuration itself:
//!
//! ```json
//! "secret": "inline value"
//! "secret": {"env": "NEWSROOM_WEBHOOK_SECRET"}
//! "secret": {"file": "/var/run/secrets/newsroom/apns.p8"}
//! ```
//!
//! A resolved [`Secret`] never prints its value (`Debug` and `Display` say `<redacted>`), so a
//! config dump or an error message cannot leak it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use newsroom_platform::config::Env;
use serde::Deserialize;

/// Where a secret's value comes from.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum SecretSource {
    /// The value itself.
    Inline(String),
    /// An environment variable holding the value.
    Env { env: String },
    /// A file holding the value (surrounding whitespace is trimmed).
    File { file: PathBuf },
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            SecretSource::Env { env } => write!(f, "Env({env})"),
            SecretSource::File { file } => write!(f, "File({})", file.display()),
        }
    }
}

/// A secret, resolved once at start-up.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// The value, for the one place that signs or authenticates with it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A secret made in code (tests).
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Secret(value.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl SecretSource {
    /// Reads the value; the error names where it looked, never what it found.
    pub fn resolve(&self, env: &Env<'_>) -> Result<Secret, String> {
        let value = match self {
            SecretSource::Inline(v) => v.clone(),
            SecretSource::Env { env: var } => env
                .raw(var)
                .ok_or_else(|| format!("environment variable {var} is not set"))?,
            SecretSource::File { file } => std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?,
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(format!("{self:?} is empty"));
        }
        Ok(Secret(value.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        let src: SecretSource = serde_json::from_str(r#""hunter2""#).unwrap();
        assert!(!format!("{src:?}").contains("hunter2"));
    }

    #[test]
    fn a_secret_comes_inline_from_the_environment_or_from_a_file() {
        let env = Env::from_fn(|k| (k == "MY_SECRET").then(|| "from-env\n".to_owned()));
        let parse = |j: &str| serde_json::from_str::<SecretSource>(j).unwrap();
        assert_eq!(parse(r#""abc""#).resolve(&env).unwrap().expose(), "abc");
        assert_eq!(
            parse(r#"{"env":"MY_SECRET"}"#)
                .resolve(&env)
                .unwrap()
                .expose(),
            "from-env"
        );
        let path = std::env::temp_dir().join(format!("secret-{}", std::process::id()));
        std::fs::write(&path, "from-file\n").unwrap();
        let src = SecretSource::File { file: path.clone() };
        assert_eq!(src.resolve(&env).unwrap().expose(), "from-file");
        std::fs::remove_file(path).unwrap();
        let err = parse(r#"{"env":"MISSING"}"#).resolve(&env).unwrap_err();
        assert!(err.contains("MISSING"), "{err}");
    }
}
