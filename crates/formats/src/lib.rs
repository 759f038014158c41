//! Every way news comes in as a document: RSS 0.9x/1.0/2.0, Atom (with Media RSS), JSON Feed,
//! NINJS (1.x and 2.0) and NewsML-G2 `newsItem`.
//!
//! [`parse`] turns a document into [`Item`]s — a `Story` each, or the reason that item cannot
//! be one — detecting the format when no hint is given ([`detect`]). Non-UTF-8 documents are
//! decoded from the encoding their XML declaration names ([`decode`]). Parsing maps each
//! format's identity and editorial fields onto `Story`; validation and normalisation happen
//! afterwards, in the same place as for `SubmitStory`.

pub mod feed;
pub mod newsml;
pub mod ninjs;

use newsroom_proto::v1::Story;

/// A document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RSS, Atom or JSON Feed (feed-rs tells them apart).
    Feed,
    Ninjs,
    NewsmlG2,
}

/// Why a document cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("format: unknown format hint {0:?} (rss, atom, jsonfeed, ninjs, newsml-g2)")]
    UnknownHint(String),
    #[error("document: empty")]
    Empty,
    #[error("document: not a feed, NINJS or NewsML-G2 document")]
    Undetected,
    #[error("document: {0}")]
    Invalid(String),
}

/// One item of a document: a story, or why it could not become one.
pub type Item = Result<Story, ItemError>;

/// An item that cannot become a story.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ItemError {
    /// The item's guid, when it has one.
    pub guid: String,
    pub field: String,
    pub reason: String,
}

/// The format named by a hint (`""` = detect).
pub fn from_hint(hint: &str) -> Result<Option<Format>, FormatError> {
    Ok(match hint.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => None,
        "rss" | "atom" | "jsonfeed" | "json-feed" | "feed" => Some(Format::Feed),
        "ninjs" => Some(Format::Ninjs),
        "newsml-g2" | "newsml" | "newsmlg2" => Some(Format::NewsmlG2),
        other => return Err(FormatError::UnknownHint(other.to_owned())),
    })
}

/// Detects the format from the first bytes of a document.
pub fn detect(document: &[u8]) -> Result<Format, FormatError> {
    let head = String::from_utf8_lossy(&document[..document.len().min(4096)]);
    let head = head.trim_start_matches('\u{feff}').trim_start();
    if head.is_empty() {
        return Err(FormatError::Empty);
    }
    if head.starts_with('{') {
        // JSON Feed declares itself with its version URL; NINJS has uri/headline(s)/bodies.
        return Ok(if head.contains("jsonfeed.org/version") {
            Format::Feed
        } else {
            Format::Ninjs
        });
    }
    if head.starts_with('<') {
        if head.contains("<newsItem") || head.contains(":newsItem") {
            return Ok(Format::NewsmlG2);
        }
        if ["<rss", "<rdf:RDF", "<feed", "<RDF"]
            .iter()
            .any(|t| head.contains(t))
        {
            return Ok(Format::Feed);
        }
    }
    Err(FormatError::Undetected)
}

/// Parses a document into items for `source`.
pub fn parse(document: &[u8], hint: &str, source: &str) -> Result<Vec<Item>, FormatError> {
    if document.iter().all(u8::is_ascii_whitespace) {
        return Err(FormatError::Empty);
    }
    let format = match from_hint(hint)? {
        Some(f) => f,
        None => detect(document)?,
    };
    match format {
        Format::Feed => feed::parse(document, source),
        Format::Ninjs => Ok(vec![ninjs::parse(&decode(document)?, source)]),
        Format::NewsmlG2 => newsml::parse(&decode(document)?, source),
    }
}

/// The document as text: UTF-8 (with or without BOM), or the encoding named by the XML
/// declaration (ISO-8859-1, Windows-1252, …).
pub fn decode(document: &[u8]) -> Result<String, FormatError> {
    if let Some((enc, _)) = encoding_rs::Encoding::for_bom(document) {
        let (text, _, _) = enc.decode(document);
        return Ok(text.into_owned());
    }
    let head = String::from_utf8_lossy(&document[..document.len().min(200)]);
    // `encoding="…"` or `encoding='…'`; anything else after `encoding=` (a multi-byte
    // character, nothing) names no encoding.
    let declared = head
        .split_once("encoding=")
        .and_then(|(_, rest)| {
            let quote = rest.chars().next().filter(|q| matches!(q, '"' | '\''))?;
            rest[quote.len_utf8()..]
                .split(quote)
                .next()
                .map(str::to_owned)
        })
        .and_then(|label| encoding_rs::Encoding::for_label(label.trim().as_bytes()));
    match declared {
        Some(enc) if enc != encoding_rs::UTF_8 => Ok(enc.decode(document).0.into_owned()),
        _ => String::from_utf8(document.to_vec()).map_err(|e| {
            FormatError::Invalid(format!(
                "not valid UTF-8 and no other encoding declared: {e}"
            ))
        }),
    }
}

/// Parses an RFC 3339 timestamp into UTC.
pub(crate) fn timestamp(s: &str) -> Option<prost_types::Timestamp> {
    use std::str::FromStr as _;
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    prost_types::Timestamp::from_str(s).ok().or_else(|| {
        // RFC 3339 with an offset other than Z: prost-types takes only Z, so shift by hand.
        let (base, sign, off) = match s.rfind(['+', '-']) {
            Some(i) if i > 10 => (&s[..i], &s[i..i + 1], &s[i + 1..]),
            _ => return None,
        };
        let (h, m) = off.split_once(':')?;
        let minutes: i64 = h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?;
        let mut t = prost_types::Timestamp::from_str(&format!("{base}Z")).ok()?;
        t.seconds -= if sign == "+" {
            minutes * 60
        } else {
            -minutes * 60
        };
        Some(t)
    })
}

/// Where a test data file lives: under `NEWSROOM_DATA` if set (a git worktree elsewhere),
/// else under `shared/data` beside the repository.
#[cfg(test)]
fn test_data(rel: &str) -> String {
    match std::env::var("NEWSROOM_DATA") {
        Ok(dir) => format!("{dir}/{rel}"),
        Err(_) => format!("{}/../../../shared/data/{rel}", env!("CARGO_MANIFEST_DIR")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format() {
        assert_eq!(
            detect(b"<?xml version='1.0'?><rss version='2.0'>").unwrap(),
            Format::Feed
        );
        assert_eq!(
            detect(b"<feed xmlns='http://www.w3.org/2005/Atom'>").unwrap(),
            Format::Feed
        );
        assert_eq!(
            detect(br#"{"version":"https://jsonfeed.org/version/1.1"}"#).unwrap(),
            Format::Feed
        );
        assert_eq!(
            detect(br#"{"uri":"x","headline":"h"}"#).unwrap(),
            Format::Ninjs
        );
        assert_eq!(detect(b"<newsItem guid='x'>").unwrap(), Format::NewsmlG2);
        assert_eq!(detect(b"hello").unwrap_err(), FormatError::Undetected);
        assert_eq!(parse(b"  ", "", "s").unwrap_err(), FormatError::Empty);
        assert!(matches!(
            parse(b"<rss/>", "pdf", "s"),
            Err(FormatError::UnknownHint(_))
        ));
    }

    #[test]
    fn offsets_become_utc() {
        let t = timestamp("2018-10-21T16:25:32-05:00").unwrap();
        assert_eq!(t, timestamp("2018-10-21T21:25:32Z").unwrap());
    }

    #[test]
    fn iso_8859_1_is_decoded() {
        let doc = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>caf\xe9</a>";
        assert!(decode(doc).unwrap().contains("café"));
    }

    #[test]
    fn a_multi_byte_character_after_encoding_is_no_encoding_and_no_panic() {
        for doc in [
            "<?xml version=\"1.0\" encoding=é?><newsItem/>".as_bytes(),
            "{\"headline\": \"encoding=\u{1F4F0}\", \"body_html\": \"<p>x</p>\"}".as_bytes(),
            b"<?xml version=\"1.0\" encoding=",
            b"<?xml version=\"1.0\" encoding=\"\xc3",
        ] {
            // Text, or an error naming what is wrong: never a panic.
            let _ = decode(doc);
            let _ = parse(doc, "", "wire");
        }
        let json = "{\"headline\": \"encoding=\u{1F4F0}\"}";
        assert_eq!(decode(json.as_bytes()).unwrap(), json);
    }
}
