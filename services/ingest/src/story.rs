//! Validation at the edge, the content fingerprint and the embargo time.
//!
//! A [`ValidStory`] is a `Story` whose required fields are present and whose sizes are bounded;
//! the core never sees an unchecked one. A [`FieldError`] names the offending field
//! (`story.headline`) and becomes `INVALID_ARGUMENT` with a `BadRequest` field violation.

use newsroom_proto::v1::{PubStatus, Story};
use sha2::{Digest as _, Sha256};

use crate::config::Limits;

/// A field that makes a story unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl From<crate::formats::FormatError> for FieldError {
    fn from(e: crate::formats::FormatError) -> Self {
        let text = e.to_string();
        let (field, reason) = text.split_once(": ").unwrap_or(("document", &text));
        FieldError::new(field, reason)
    }
}

impl FieldError {
    pub(crate) fn new(field: &str, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A story that passed validation, with its normalised identity fields.
#[derive(Debug, Clone)]
pub struct ValidStory {
    pub story: Story,
    /// The identity key within the source: guid, else URL, else the headline's fingerprint.
    pub guid: String,
}

/// Bytes an identifier may hold: it ends up in keys, indexes and labels.
pub const MAX_SOURCE_BYTES: usize = 64;
pub const MAX_GUID_BYTES: usize = 512;
pub const MAX_URL_BYTES: usize = 2048;
pub const MAX_SECTION_BYTES: usize = 128;
pub const MAX_AUTHORS: usize = 50;
pub const MAX_AUTHOR_BYTES: usize = 200;
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;

/// Whether `s` is a well-formed source name: 1 to [`MAX_SOURCE_BYTES`] ASCII letters, digits,
/// `-`, `_` and `.`.
pub fn is_source_name(s: &str) -> bool {
    (1..=MAX_SOURCE_BYTES).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Validates and normalises a submitted story.
pub fn validate(story: Option<Story>, limits: &Limits) -> Result<ValidStory, FieldError> {
    let mut story = story.ok_or_else(|| FieldError::new("story", "required"))?;
    trim(&mut story.headline);
    trim(&mut story.source);
    trim(&mut story.guid);
    trim(&mut story.url);
    trim(&mut story.standfirst);

    // A kill only has to say which story it kills: the source and the guid (or URL).
    let kill = story.pubstatus == PubStatus::Canceled as i32;
    if kill && story.guid.is_empty() && story.url.is_empty() {
        return Err(FieldError::new(
            "story.guid",
            "a kill (pubstatus canceled) must name the story by guid or url",
        ));
    }
    if story.headline.is_empty() && !kill {
        return Err(FieldError::new("story.headline", "required"));
    }
    let chars = story.headline.chars().count();
    if chars > limits.max_headline_chars {
        return Err(FieldError::new(
            "story.headline",
            format!(
                "{chars} characters, at most {} allowed",
                limits.max_headline_chars
            ),
        ));
    }
    if story.body_html.trim().is_empty() && !kill {
        return Err(FieldError::new("story.body_html", "required"));
    }
    if story.source.is_empty() {
        return Err(FieldError::new(
            "story.source",
            "required (the wire, CMS or feed the story comes from)",
        ));
    }
    if !is_source_name(&story.source) {
        return Err(FieldError::new(
            "story.source",
            format!(
                "only ASCII letters, digits, '-', '_' and '.' are allowed, at most {MAX_SOURCE_BYTES}"
            ),
        ));
    }
    for (field, value, max) in [
        ("story.guid", &story.guid, MAX_GUID_BYTES),
        ("story.url", &story.url, MAX_URL_BYTES),
        ("story.section", &story.section, MAX_SECTION_BYTES),
    ] {
        if value.len() > max {
            return Err(FieldError::new(
                field,
                format!("{} bytes, at most {max} allowed", value.len()),
            ));
        }
    }
    if story.authors.len() > MAX_AUTHORS || story.authors.iter().any(|a| a.len() > MAX_AUTHOR_BYTES)
    {
        return Err(FieldError::new(
            "story.authors",
            format!("at most {MAX_AUTHORS}, each at most {MAX_AUTHOR_BYTES} bytes"),
        ));
    }
    if story.urgency > 8 {
        return Err(FieldError::new(
            "story.urgency",
            format!(
                "{} is outside IPTC urgency 1..8 (0 = not given)",
                story.urgency
            ),
        ));
    }
    if PubStatus::try_from(story.pubstatus).is_err() {
        return Err(FieldError::new(
            "story.pubstatus",
            format!("unknown value {}", story.pubstatus),
        ));
    }
    let url_ok = story.url.is_empty()
        || story.url.starts_with("https://")
        || story.url.starts_with("http://");
    if !url_ok {
        return Err(FieldError::new("story.url", "must be an http(s) URL"));
    }
    let size = story_size(&story);
    if size > limits.max_story_bytes {
        return Err(FieldError::new(
            "story",
            format!("{size} bytes, at most {} allowed", limits.max_story_bytes),
        ));
    }
    crate::normalise::story(&mut story);
    // Sanitising can grow a story (a `<` in text becomes `&lt;`): the limit holds for what is
    // written to Kafka, so no record is refused by the broker after the caller was answered.
    let size = story_size(&story);
    if size > limits.max_story_bytes {
        return Err(FieldError::new(
            "story",
            format!(
                "{size} bytes after sanitising, at most {} allowed",
                limits.max_story_bytes
            ),
        ));
    }
    if story.body_html.is_empty() && !kill {
        return Err(FieldError::new(
            "story.body_html",
            "nothing left after sanitising (scripts and styles are removed)",
        ));
    }
    if story.pubstatus == PubStatus::Unspecified as i32 {
        story.pubstatus = PubStatus::Usable as i32;
    }
    // Ids and versions are ingest's to assign; whatever the client sent is ignored.
    story.id.clear();
    story.version = 0;

    let guid = if !story.guid.is_empty() {
        story.guid.clone()
    } else if !story.url.is_empty() {
        story.url.clone()
    } else {
        format!(
            "headline:{}",
            hex::encode(&Sha256::digest(story.headline.as_bytes())[..12])
        )
    };
    Ok(ValidStory { story, guid })
}

fn trim(s: &mut String) {
    let t = s.trim();
    if t.len() != s.len() {
        *s = t.to_owned();
    }
}

fn story_size(s: &Story) -> usize {
    s.headline.len()
        + s.standfirst.len()
        + s.body_html.len()
        + s.url.len()
        + s.authors
            .iter()
            .chain(&s.tags)
            .chain(&s.subjects)
            .map(String::len)
            .sum::<usize>()
}

pub use newsroom_platform::time::now_ms;

/// When a story's embargo ends, in ms since the epoch, if it has one (past or future).
pub fn embargo_until_ms(story: &Story) -> Option<i64> {
    newsroom_platform::time::timestamp_ms(&story.embargo_until?)
}

/// Hex SHA-256 over the editorial content: what, if changed, makes a new version.
pub fn fingerprint(s: &Story) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        // Length-prefixed so that moving text between fields changes the fingerprint.
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    for text in [
        &s.headline,
        &s.standfirst,
        &s.body_html,
        &s.url,
        &s.language,
        &s.section,
        &s.located,
    ] {
        field(text.as_bytes());
    }
    for list in [&s.authors, &s.tags, &s.subjects] {
        field(&(list.len() as u64).to_le_bytes());
        for item in list {
            field(item.as_bytes());
        }
    }
    field(&s.urgency.to_le_bytes());
    field(&s.pubstatus.to_le_bytes());
    field(&s.signal.to_le_bytes());
    field(&[u8::from(s.canary)]);
    let embargo = s.embargo_until.as_ref().map(|t| (t.seconds, t.nanos));
    field(format!("{embargo:?}").as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn story() -> Story {
        Story {
            source: "reuters".into(),
            guid: "urn:x:1".into(),
            headline: " Quake hits coast ".into(),
            body_html: "<p>A strong quake.</p>".into(),
            ..Default::default()
        }
    }

    #[test]
    fn missing_headline_names_the_field() {
        let mut s = story();
        s.headline = "   ".into();
        let err = validate(Some(s), &Limits::default()).unwrap_err();
        assert_eq!(err.field, "story.headline");
    }

    #[test]
    fn missing_body_and_bad_urgency_are_rejected() {
        let mut s = story();
        s.body_html.clear();
        assert_eq!(
            validate(Some(s), &Limits::default()).unwrap_err().field,
            "story.body_html"
        );
        let mut s = story();
        s.urgency = 9;
        assert_eq!(
            validate(Some(s), &Limits::default()).unwrap_err().field,
            "story.urgency"
        );
    }

    #[test]
    fn identifiers_are_bounded_and_the_error_names_the_field() {
        let too_long = |field: &str, max: usize| {
            let mut s = story();
            let long = "x".repeat(max + 1);
            match field {
                "story.source" => s.source = long,
                "story.guid" => s.guid = long,
                "story.url" => s.url = format!("https://{long}"),
                "story.section" => s.section = long,
                _ => s.authors = vec![long],
            }
            validate(Some(s), &Limits::default()).unwrap_err()
        };
        for (field, max) in [
            ("story.source", MAX_SOURCE_BYTES),
            ("story.guid", MAX_GUID_BYTES),
            ("story.url", MAX_URL_BYTES),
            ("story.section", MAX_SECTION_BYTES),
            ("story.authors", MAX_AUTHOR_BYTES),
        ] {
            assert_eq!(too_long(field, max).field, field);
        }
        let mut s = story();
        s.guid = "x".repeat(MAX_GUID_BYTES);
        assert!(
            validate(Some(s), &Limits::default()).is_ok(),
            "the limit itself is allowed"
        );
        assert!(is_source_name("reuters.world-1") && !is_source_name("ré") && !is_source_name(""));
    }

    #[test]
    fn a_kill_needs_only_its_identity() {
        let kill = Story {
            source: "reuters".into(),
            guid: "urn:x:1".into(),
            pubstatus: PubStatus::Canceled as i32,
            ..Default::default()
        };
        assert!(validate(Some(kill.clone()), &Limits::default()).is_ok());
        let mut anonymous = kill;
        anonymous.guid.clear();
        assert_eq!(
            validate(Some(anonymous), &Limits::default())
                .unwrap_err()
                .field,
            "story.guid"
        );
    }

    #[test]
    fn oversized_story_is_rejected() {
        let mut s = story();
        s.body_html = "x".repeat(5000);
        let limits = Limits {
            max_story_bytes: 2048,
            ..Limits::default()
        };
        assert_eq!(validate(Some(s), &limits).unwrap_err().field, "story");
    }

    #[test]
    fn headline_is_trimmed_and_status_defaults_to_usable() {
        let v = validate(Some(story()), &Limits::default()).unwrap();
        assert_eq!(v.story.headline, "Quake hits coast");
        assert_eq!(v.story.pubstatus, PubStatus::Usable as i32);
        assert_eq!(v.guid, "urn:x:1");
    }

    #[test]
    fn fingerprint_changes_with_content_only() {
        let a = validate(Some(story()), &Limits::default()).unwrap().story;
        let mut b = a.clone();
        b.published_at = Some(prost_types::Timestamp {
            seconds: 5,
            nanos: 0,
        });
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.body_html.push_str("<p>Update.</p>");
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}
