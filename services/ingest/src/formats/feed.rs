//! RSS 0.9x/1.0/2.0, Atom (with Media RSS) and JSON Feed, through feed-rs.
//!
//! Mapping: entry id (RSS guid, Atom id, JSON Feed id) → `guid`; title → `headline`; content,
//! else summary, else the Media RSS description → `body_html` (a summary also becomes the
//! standfirst when there is content); authors; the first link → `url`; categories → `tags`;
//! published / updated; the feed's language. feed-rs reads the XML declaration's encoding, so
//! ISO-8859-1 feeds come out right.

use newsroom_proto::v1::{PubStatus, Story};

use super::{FormatError, Item, ItemError};

fn ts(d: &feed_rs::model::Entry, published: bool) -> Option<prost_types::Timestamp> {
    let d = if published { d.published } else { d.updated }?;
    Some(prost_types::Timestamp {
        seconds: d.timestamp(),
        nanos: d.timestamp_subsec_nanos() as i32,
    })
}

/// Parses a feed document into items.
pub fn parse(document: &[u8], source: &str) -> Result<Vec<Item>, FormatError> {
    let feed = feed_rs::parser::Builder::new()
        .sanitize_content(false)
        .build()
        .parse(document)
        .map_err(|e| FormatError::Invalid(format!("not a valid feed: {e}")))?;
    let language = feed.language.clone().unwrap_or_default();
    Ok(feed
        .entries
        .iter()
        .map(|e| {
            let guid = e.id.clone();
            let headline = e
                .title
                .as_ref()
                .map(|t| t.content.trim().to_owned())
                .unwrap_or_default();
            let summary = e
                .summary
                .as_ref()
                .map(|t| t.content.trim().to_owned())
                .unwrap_or_default();
            let content = e
                .content
                .as_ref()
                .and_then(|c| c.body.as_deref())
                .map(str::trim)
                .unwrap_or_default()
                .to_owned();
            let media = e
                .media
                .iter()
                .find_map(|m| m.description.as_ref().map(|d| d.content.trim().to_owned()))
                .unwrap_or_default();
            let (body_html, standfirst) = match (content.is_empty(), summary.is_empty()) {
                (false, _) => (content, summary),
                (true, false) => (summary, String::new()),
                (true, true) => (media, String::new()),
            };
            if headline.is_empty() {
                return Err(ItemError {
                    guid,
                    field: "title".into(),
                    reason: "an entry without a title cannot become a story".into(),
                });
            }
            Ok(Story {
                source: source.to_owned(),
                guid,
                headline,
                standfirst,
                body_html,
                authors: e
                    .authors
                    .iter()
                    .filter_map(|p| p.name.as_deref().map(|n| n.trim().to_owned()))
                    .filter(|n| !n.is_empty())
                    .collect(),
                url: e.links.first().map(|l| l.href.clone()).unwrap_or_default(),
                language: e.language.clone().unwrap_or_else(|| language.clone()),
                tags: e
                    .categories
                    .iter()
                    .map(|c| c.label.clone().unwrap_or_else(|| c.term.clone()))
                    .collect(),
                pubstatus: PubStatus::Usable as i32,
                published_at: ts(e, true).or_else(|| ts(e, false)),
                updated_at: ts(e, false),
                ..Default::default()
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::parse as parse_any;

    fn file(name: &str) -> Vec<u8> {
        let path = super::super::test_data(&format!("feeds/{name}"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("test data {path} is missing: {e}"))
    }

    fn stories(name: &str) -> Vec<newsroom_proto::v1::Story> {
        parse_any(&file(name), "", "test")
            .unwrap()
            .into_iter()
            .filter_map(Result::ok)
            .collect()
    }

    #[test]
    fn rss_2_spiegel() {
        let s = stories("rss_2.0_spiegel.xml");
        assert!(!s.is_empty());
        assert!(
            s.iter()
                .all(|s| !s.headline.is_empty() && !s.guid.is_empty())
        );
        assert!(s[0].url.starts_with("http"));
        assert!(s[0].published_at.is_some());
    }

    #[test]
    fn iso_8859_1_feed_keeps_its_accents() {
        let s = stories("rss_1.0_iso8859.xml");
        assert!(!s.is_empty());
        let text: String = s
            .iter()
            .map(|s| format!("{} {}", s.headline, s.body_html))
            .collect();
        assert!(
            !text.contains('\u{fffd}'),
            "replacement characters in {text}"
        );
        assert!(text.chars().any(|c| "àèéìòùäöüß".contains(c)), "{text}");
    }

    #[test]
    fn atom_with_media_rss_and_json_feed() {
        let atom = stories("atom_mediarss_newscred_1.xml");
        assert!(!atom.is_empty());
        assert!(atom.iter().all(|s| !s.body_html.is_empty()), "{atom:?}");
        let json = stories("jsonfeed_elastic_1.1.json");
        assert!(!json.is_empty());
        assert!(
            json.iter()
                .all(|s| !s.guid.is_empty() && !s.headline.is_empty())
        );
    }

    #[test]
    fn every_sample_feed_parses() {
        for f in [
            "rss_2.0_ilgiornale.xml",
            "rss_2.0_ilmessaggero.xml",
            "rss_2.0_nbcny.xml",
            "rss_2.0_wirecutter.xml",
        ] {
            assert!(!stories(f).is_empty(), "{f}");
        }
    }

    #[test]
    fn the_invalid_feed_is_a_clear_error() {
        let err = parse_any(&file("rss_2.0_invalid_1.xml"), "", "test").unwrap_err();
        assert!(err.to_string().contains("not a valid feed"), "{err}");
    }
}
