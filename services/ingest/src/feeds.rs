//! The feeds file (`NEWSROOM_FEEDS_FILE`): which sources the [`crate::poller`] polls, read and
//! checked with the rest of the configuration, before any port is bound.
//!
//! ```toml
//! [[feed]]
//! source = "spiegel-rss"
//! url = "https://www.spiegel.de/index.rss"
//! interval_secs = 60
//! format = ""
//! quiet_after_secs = 3600
//! ```

use newsroom_platform::config::ConfigError;

/// Path of the TOML file listing the feeds to poll (`[[feed]]` tables). Unset: no polling.
pub const NEWSROOM_FEEDS_FILE: &str = "NEWSROOM_FEEDS_FILE";
/// `true` lets feeds live on loopback and private addresses. Default `false`.
pub const NEWSROOM_FEEDS_ALLOW_PRIVATE: &str = "NEWSROOM_FEEDS_ALLOW_PRIVATE";

/// One feed source.
#[derive(Debug, Clone, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeedSource {
    /// The source name its stories carry (`spiegel-rss`).
    pub source: String,
    /// http(s) URL of the feed.
    pub url: String,
    /// Seconds between polls. Default 60.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Format hint (`rss`, `atom`, `jsonfeed`, `ninjs`, `newsml-g2`); empty = detect.
    #[serde(default)]
    pub format: String,
    /// Seconds without a new story after which the source counts as quiet. Default 3600.
    #[serde(default = "default_quiet")]
    pub quiet_after_secs: u64,
}

fn default_interval() -> u64 {
    60
}

fn default_quiet() -> u64 {
    3600
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedsFile {
    #[serde(default)]
    feed: Vec<FeedSource>,
}

/// Reads and checks the feeds file.
pub fn load(path: &str) -> Result<Vec<FeedSource>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::invalid(NEWSROOM_FEEDS_FILE, path, e.to_string()))?;
    let file: FeedsFile = toml::from_str(&text)
        .map_err(|e| ConfigError::invalid(NEWSROOM_FEEDS_FILE, path, e.to_string()))?;
    for (i, f) in file.feed.iter().enumerate() {
        let bad = |why: String| {
            ConfigError::invalid(NEWSROOM_FEEDS_FILE, path, format!("feed {i}: {why}"))
        };
        let url = url::Url::parse(&f.url).map_err(|e| bad(format!("url: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("url: only http and https".into()));
        }
        if f.source.trim().is_empty() {
            return Err(bad("source: required".into()));
        }
        if f.interval_secs == 0 {
            return Err(bad("interval_secs: at least 1".into()));
        }
        crate::formats::from_hint(&f.format).map_err(|e| bad(e.to_string()))?;
    }
    Ok(file.feed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feeds_file_is_checked() {
        let dir = std::env::temp_dir().join(format!("feeds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[[feed]]\nsource = \"s\"\nurl = \"https://example.com/rss\"\n",
        )
        .unwrap();
        let feeds = load(good.to_str().unwrap()).unwrap();
        assert_eq!(
            (feeds[0].interval_secs, feeds[0].quiet_after_secs),
            (60, 3600)
        );
        let bad = dir.join("bad.toml");
        std::fs::write(
            &bad,
            "[[feed]]\nsource = \"s\"\nurl = \"file:///etc/passwd\"\n",
        )
        .unwrap();
        let err = load(bad.to_str().unwrap()).unwrap_err().to_string();
        assert!(
            err.starts_with(NEWSROOM_FEEDS_FILE) && err.contains("http"),
            "{err}"
        );
    }
}
