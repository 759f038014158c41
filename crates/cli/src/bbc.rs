//! The BBC News sample (`bbc-news.jsonl`: id, category, headline, body) → `Story`s.

use newsroom_proto::v1::{PubStatus, Story};

/// One line of the sample.
#[derive(Debug, serde::Deserialize)]
pub struct BbcArticle {
    pub id: String,
    pub category: String,
    pub headline: String,
    pub body: String,
}

/// Why the sample (or another file of the shared data folder) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The message carries the cause (not a `source`): printed once, with the path.
    #[error("cannot read {path}: {error}")]
    File {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Line(#[from] serde_json::Error),
}

impl ReadError {
    pub fn file(path: &std::path::Path, error: std::io::Error) -> Self {
        ReadError::File {
            path: path.to_owned(),
            error,
        }
    }
}

/// Reads up to `limit` articles of the sample.
pub fn read(path: &std::path::Path, limit: usize) -> Result<Vec<BbcArticle>, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReadError::file(path, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(limit)
        .map(|l| serde_json::from_str(l).map_err(ReadError::from))
        .collect()
}

impl BbcArticle {
    /// The article as a story from source `bbc-archive`, its paragraphs as HTML.
    pub fn to_story(&self) -> Story {
        let body_html = self
            .body
            .split("\n\n")
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                format!(
                    "<p>{}</p>",
                    p.trim().replace('&', "&amp;").replace('<', "&lt;")
                )
            })
            .collect();
        Story {
            source: "bbc-archive".to_owned(),
            guid: self.id.clone(),
            headline: self.headline.clone(),
            body_html,
            language: "en".to_owned(),
            section: self.category.clone(),
            urgency: 5,
            pubstatus: PubStatus::Usable as i32,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_sample_names_its_path_once() {
        let path = std::path::Path::new("/no/such/bbc-news.jsonl");
        let e = read(path, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot read /no/such/bbc-news.jsonl: {}",
                std::fs::read(path).unwrap_err()
            )
        );
        // The cause is in the message, not repeated as a source when `main` prints the chain.
        assert!(std::error::Error::source(&e).is_none());
    }
}
