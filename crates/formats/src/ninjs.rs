//! NINJS (IPTC's News in JSON, 1.x and 2.0) → `Story`.
//!
//! 1.x has plain `headline` / `body_html` / `body_text`; 2.0 nests them in `headlines` and
//! `bodies` arrays of `{value, role, contenttype}`. Both carry `uri` (the guid), `urgency`,
//! `pubstatus`, `embargoed`, `by` / `byline`, `located`, `subject` and `service`.

use newsroom_proto::v1::{PubStatus, Story};
use serde_json::Value;

use super::{Item, ItemError};

/// Why a document is not a usable NINJS story.
#[derive(Debug, thiserror::Error)]
pub enum NinjsError {
    #[error("document: not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}: required")]
    Missing(&'static str),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// Parses a NINJS document into one item.
pub fn parse(document: &str, source: &str) -> Item {
    to_story(document, source).map_err(|e| {
        let guid = serde_json::from_str::<Value>(document)
            .ok()
            .and_then(|v| v.get("uri").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        let (field, reason) = match &e {
            NinjsError::Json(j) => ("document".to_owned(), format!("not JSON: {j}")),
            NinjsError::Missing(f) => ((*f).to_owned(), "required".to_owned()),
            NinjsError::Invalid { field, reason } => ((*field).to_owned(), reason.clone()),
        };
        ItemError {
            guid,
            field,
            reason,
        }
    })
}

/// Maps a NINJS document onto a `Story` from `source`.
pub fn to_story(document: &str, source: &str) -> Result<Story, NinjsError> {
    let v: Value = serde_json::from_str(document)?;
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    // NINJS 2.0 nests headlines and bodies in arrays of {value, role}; 1.x has plain strings.
    let first_value = |k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|h| h.get("value"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let headline = first_value("headlines").unwrap_or_else(|| text("headline"));
    if headline.is_empty() {
        return Err(NinjsError::Missing("headline"));
    }
    let body_html = {
        let html = text("body_html");
        if !html.is_empty() {
            html
        } else if let Some(b) = first_value("bodies") {
            b
        } else {
            let plain = text("body_text");
            plain
                .split("\n\n")
                .filter(|p| !p.trim().is_empty())
                .map(|p| format!("<p>{}</p>", escape(p.trim())))
                .collect()
        }
    };
    let time = |field: &'static str| -> Result<Option<prost_types::Timestamp>, NinjsError> {
        match v.get(field).and_then(Value::as_str) {
            None | Some("") => Ok(None),
            Some(t) => super::timestamp(t)
                .map(Some)
                .ok_or_else(|| NinjsError::Invalid {
                    field,
                    reason: format!("{t:?} is not an RFC 3339 date-time"),
                }),
        }
    };
    let pubstatus = match text("pubstatus").as_str() {
        "" | "usable" => PubStatus::Usable,
        "withheld" => PubStatus::Withheld,
        "canceled" | "cancelled" => PubStatus::Canceled,
        other => {
            return Err(NinjsError::Invalid {
                field: "pubstatus",
                reason: format!("unknown value {other:?}"),
            });
        }
    };
    let names = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.get("name").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut authors: Vec<String> = names("by");
    if authors.is_empty() && !text("byline").is_empty() {
        authors.push(text("byline"));
    }
    let uri = text("uri");
    Ok(Story {
        source: source.to_owned(),
        guid: uri,
        headline,
        standfirst: {
            let d = text("description_text");
            if d.is_empty() {
                text("description_html")
            } else {
                d
            }
        },
        body_html,
        authors,
        url: v
            .get("links")
            .and_then(Value::as_array)
            .and_then(|l| {
                l.iter()
                    .find(|x| x.get("rel").and_then(Value::as_str) == Some("canonical"))
            })
            .and_then(|x| x.get("href").and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned(),
        language: text("language"),
        section: names("service").into_iter().next().unwrap_or_default(),
        tags: names("subject"),
        subjects: v
            .get("subject")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| {
                        x.get("code")
                            .or_else(|| x.get("uri"))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        urgency: v
            .get("urgency")
            .and_then(Value::as_u64)
            .map_or(0, |u| u.min(8) as u32),
        pubstatus: pubstatus as i32,
        published_at: time("firstcreated")?,
        updated_at: time("versioncreated")?,
        embargo_until: time("embargoed")?,
        located: match v.get("located") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(o)) => o
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        },
        ..Default::default()
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_story_maps_onto_a_story() {
        let path = super::super::test_data("seed-story.ninjs.json");
        let doc = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("test data {path} is missing: {e}"));
        let s = to_story(&doc, "scmp").unwrap();
        assert!(
            s.headline
                .starts_with("Xi Jinping urges global tech cooperation")
        );
        assert_eq!(
            s.guid,
            "urn:newsml:scmp.com:20221109:wic-xi-tech-cooperation"
        );
        assert_eq!(s.urgency, 3);
        assert_eq!(s.language, "en");
        assert_eq!(s.located, "Wuzhen");
        assert_eq!(s.section, "China");
        assert!(s.body_html.contains("World Internet Conference"));
        assert_eq!(s.published_at.unwrap().seconds, 1_667_986_200);
    }

    #[test]
    fn a_document_without_headline_is_rejected() {
        let err = to_story(r#"{"uri":"x","body_text":"y"}"#, "s").unwrap_err();
        assert_eq!(err.to_string(), "headline: required");
    }
}
