//! RSS 0.9x/1.0/2.0, Atom (with Media RSS) and JSON Feed, through feed-rs.
//!
//! Mapping: entry id (RSS guid, Atom id, JSON Feed id) → `guid`; title → `headline`; content,
//! else summary, else the Media RSS description → `body_html` (a summary also becomes the
//! standfirst when there is content); authors; the first link → `url`; categories → `tags`;
//! published / updated; the feed's language. XML is decoded here from the declaration's
//! encoding (so ISO-8859-1 feeds come out right) and handed to feed-rs as UTF-8.

use newsroom_proto::v1::{PubStatus, Story};

use super::{FormatError, Item, ItemError};

fn ts(d: &feed_rs::model::Entry, published: bool) -> Option<prost_types::Timestamp> {
    let d = if published { d.published } else { d.updated }?;
    Some(prost_types::Timestamp {
        seconds: d.timestamp(),
        nanos: d.timestamp_subsec_nanos() as i32,
    })
}

/// Where a second XML declaration starts, if the document has one: XML allows one, at the very
/// start. Feeds glued together in the wild have more, and quick-xml (under feed-rs) panics when a
/// later one names another encoding (found by `just fuzz`), so such a document is refused here.
fn later_declaration(document: &[u8]) -> Option<usize> {
    let start = document
        .iter()
        .position(|b| !b.is_ascii_whitespace() && !matches!(b, 0xEF | 0xBB | 0xBF))
        .unwrap_or(0);
    document
        .windows(6)
        .enumerate()
        .skip(start + 1)
        .find(|(_, w)| {
            w[..5].eq_ignore_ascii_case(b"<?xml") && (w[5].is_ascii_whitespace() || w[5] == b'?')
        })
        .map(|(i, _)| i)
}

/// Whether the document starts with a byte-order mark (UTF-8 or UTF-16).
fn has_bom(document: &[u8]) -> bool {
    document.starts_with(&[0xEF, 0xBB, 0xBF])
        || document.starts_with(&[0xFF, 0xFE])
        || document.starts_with(&[0xFE, 0xFF])
}

/// The text without its leading XML declaration (up to the first `?>`), if it has one.
fn without_declaration(text: String) -> String {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let declared = trimmed.len() >= 6
        && trimmed.as_bytes()[..5].eq_ignore_ascii_case(b"<?xml")
        && (trimmed.as_bytes()[5].is_ascii_whitespace() || trimmed.as_bytes()[5] == b'?');
    match trimmed.find("?>") {
        Some(end) if declared => trimmed[end + 2..].to_owned(),
        _ => text,
    }
}

/// Parses a feed document into items.
pub fn parse(document: &[u8], source: &str) -> Result<Vec<Item>, FormatError> {
    if let Some(at) = later_declaration(document) {
        return Err(FormatError::Invalid(format!(
            "not a valid feed: a second XML declaration at byte {at} (XML allows one, at the start)"
        )));
    }
    // XML feeds are decoded here (the declaration's encoding, a BOM) and handed over as UTF-8
    // without their declaration: quick-xml's own switch of encoding panics when the
    // declaration is longer than its look-ahead (found by `just fuzz`).
    let decoded;
    let input = if document.trim_ascii_start().starts_with(b"<") || has_bom(document) {
        decoded = without_declaration(super::decode(document)?);
        decoded.as_bytes()
    } else {
        document
    };
    let feed = feed_rs::parser::Builder::new()
        .sanitize_content(false)
        .build()
        .parse(input)
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
