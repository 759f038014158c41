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

/// Reads up to `limit` articles of the sample.
pub fn read(path: &std::path::Path, limit: usize) -> anyhow::Result<Vec<BbcArticle>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(limit)
        .map(|l| serde_json::from_str(l).map_err(anyhow::Error::from))
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
