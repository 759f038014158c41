//! NewsML-G2 `newsItem` → `Story`.
//!
//! itemMeta: `guid` and `version` attributes, `pubStatus` (stat:usable / withheld / canceled),
//! `embargoed`, `signal` (sig:update, sig:correction), `versionCreated`, `firstCreated`,
//! `service`. contentMeta: `urgency`, `headline`, `description` (→ standfirst), `creator`
//! (→ authors), `located`, `subject` qcodes (→ subjects, names → tags), `language`.
//! contentSet: `inlineXML` with NITF (`body.content`) or XHTML (`body`), or `inlineData` (plain
//! text, paragraphs on blank lines). A `newsMessage` wrapping several `newsItem`s gives one item
//! each.

use newsroom_proto::v1::{PubStatus, Signal, Story};
use roxmltree::{Document, Node};

use super::{FormatError, Item, ItemError, timestamp};

fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn children<'a, 'i>(n: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

fn descendant<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.descendants()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// All the text under a node, whitespace collapsed.
fn text(n: Node<'_, '_>) -> String {
    let raw: String = n
        .descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect::<Vec<_>>()
        .join(" ");
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `<name>` of a concept element, else its own text.
fn concept_name(n: Node<'_, '_>) -> String {
    child(n, "name").map(text).unwrap_or_else(|| text(n))
}

/// The markup inside a node, as written in the document (namespace prefixes dropped).
fn inner_markup(doc: &str, n: Node<'_, '_>) -> String {
    let mut out = String::new();
    for c in n.children() {
        let r = c.range();
        if c.is_element() || c.is_text() {
            out.push_str(&doc[r]);
        }
    }
    out.trim().to_owned()
}

fn body_html(doc: &str, item: Node<'_, '_>) -> String {
    let Some(set) = descendant(item, "contentSet") else {
        return String::new();
    };
    if let Some(inline) = descendant(set, "inlineXML") {
        // NITF: body/body.content; XHTML: html/body.
        if let Some(content) = descendant(inline, "body.content") {
            return inner_markup(doc, content);
        }
        if let Some(body) = descendant(inline, "body") {
            return inner_markup(doc, body);
        }
        return inner_markup(doc, inline);
    }
    if let Some(data) = descendant(set, "inlineData") {
        let raw = data.text().unwrap_or_default();
        return raw
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| format!("<p>{}</p>", p.replace('&', "&amp;").replace('<', "&lt;")))
            .collect();
    }
    String::new()
}

fn qcode(n: Option<Node<'_, '_>>) -> String {
    n.and_then(|n| n.attribute("qcode"))
        .unwrap_or_default()
        .to_owned()
}

fn item_story(doc: &str, item: Node<'_, '_>, source: &str) -> Item {
    let guid = item.attribute("guid").unwrap_or_default().to_owned();
    let err = |field: &str, reason: String| ItemError {
        guid: guid.clone(),
        field: field.to_owned(),
        reason,
    };
    if guid.is_empty() {
        return Err(err("guid", "a newsItem needs its guid attribute".into()));
    }
    let meta = child(item, "itemMeta");
    let content = child(item, "contentMeta");
    let time = |parent: Option<Node<'_, '_>>,
                name: &str|
     -> Result<Option<prost_types::Timestamp>, ItemError> {
        match parent.and_then(|p| child(p, name)).map(text) {
            None => Ok(None),
            Some(t) if t.is_empty() => Ok(None),
            Some(t) => timestamp(&t)
                .map(Some)
                .ok_or_else(|| err(name, format!("{t:?} is not a date-time"))),
        }
    };
    let pubstatus = match qcode(meta.and_then(|m| child(m, "pubStatus"))).as_str() {
        "" | "stat:usable" => PubStatus::Usable,
        "stat:withheld" => PubStatus::Withheld,
        "stat:canceled" | "stat:cancelled" => PubStatus::Canceled,
        other => return Err(err("pubStatus", format!("unknown qcode {other:?}"))),
    };
    let signal = meta
        .map(|m| {
            children(m, "signal")
                .filter_map(|s| s.attribute("qcode"))
                .fold(Signal::Unspecified, |acc, q| match q {
                    "sig:correction" => Signal::Correction,
                    "sig:update" if acc == Signal::Unspecified => Signal::Update,
                    _ => acc,
                })
        })
        .unwrap_or(Signal::Unspecified);
    let urgency = match content.and_then(|c| child(c, "urgency")).map(text) {
        None => 0,
        Some(u) => match u.parse::<u32>() {
            Ok(n) if (1..=9).contains(&n) => n.min(8),
            _ => return Err(err("urgency", format!("{u:?} is not an urgency 1..9"))),
        },
    };
    let language = content
        .and_then(|c| child(c, "language"))
        .and_then(|l| l.attribute("tag"))
        .or_else(|| item.attribute(("http://www.w3.org/XML/1998/namespace", "lang")))
        .unwrap_or_default()
        .to_owned();
    let subjects: Vec<Node<'_, '_>> = content
        .map(|c| children(c, "subject").collect())
        .unwrap_or_default();
    Ok(Story {
        source: source.to_owned(),
        guid: guid.clone(),
        version: 0,
        headline: content
            .and_then(|c| child(c, "headline"))
            .map(text)
            .unwrap_or_default(),
        standfirst: content
            .and_then(|c| child(c, "description"))
            .map(text)
            .unwrap_or_default(),
        body_html: body_html(doc, item),
        authors: content
            .map(|c| {
                children(c, "creator")
                    .map(concept_name)
                    .filter(|n| !n.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        url: meta
            .and_then(|m| {
                children(m, "link")
                    .find(|l| l.attribute("rel") == Some("irel:canonical"))
                    .and_then(|l| l.attribute("href"))
            })
            .unwrap_or_default()
            .to_owned(),
        language,
        section: meta
            .and_then(|m| child(m, "service"))
            .map(concept_name)
            .unwrap_or_default(),
        tags: subjects
            .iter()
            .map(|s| concept_name(*s))
            .filter(|n| !n.is_empty())
            .collect(),
        urgency,
        pubstatus: pubstatus as i32,
        published_at: time(meta, "firstCreated")?.or(time(content, "contentCreated")?),
        updated_at: time(meta, "versionCreated")?,
        embargo_until: time(meta, "embargoed")?,
        subjects: subjects
            .iter()
            .filter_map(|s| s.attribute("qcode").map(str::to_owned))
            .collect(),
        located: content
            .and_then(|c| child(c, "located"))
            .map(concept_name)
            .unwrap_or_default(),
        signal: signal as i32,
        ..Default::default()
    })
}

/// Parses a NewsML-G2 document (a `newsItem`, or a `newsMessage` of them).
pub fn parse(document: &str, source: &str) -> Result<Vec<Item>, FormatError> {
    let doc = Document::parse(document)
        .map_err(|e| FormatError::Invalid(format!("not well-formed XML: {e}")))?;
    let items: Vec<Item> = doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "newsItem")
        .map(|n| item_story(document, n, source))
        .collect();
    if items.is_empty() {
        return Err(FormatError::Invalid("no newsItem in the document".into()));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> String {
        let path = super::super::test_data(&format!("newsml/{name}"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("test data {path} is missing: {e}"))
    }

    #[test]
    fn the_embargoed_update_maps_its_editorial_fields() {
        let items = parse(&file("newsitem-embargoed.xml"), "acme").unwrap();
        let s = items[0].clone().unwrap();
        assert_eq!(s.guid, "urn:newsml:acmenews.com:20161018:US-FINANCE-FED");
        assert_eq!(s.headline, "Fed to halt QE to avert \"bubble\"");
        assert_eq!(s.signal, Signal::Update as i32);
        assert_eq!(s.located, "Berlin");
        assert_eq!(s.authors, ["Meredith Jameson"]);
        assert_eq!(s.subjects, ["medtop:04000000", "medtop:20000523"]);
        assert_eq!(s.language, "en-GB");
        assert_eq!(s.section, "UK News Service");
        assert_eq!(s.embargo_until, timestamp("2018-10-23T12:00:00Z"));
        assert_eq!(s.updated_at, timestamp("2018-10-21T21:25:32Z"));
        // The sample's NITF body is empty: validation, not parsing, refuses it.
        assert!(s.body_html.is_empty());
    }

    #[test]
    fn the_text_document_has_a_body() {
        let items = parse(&file("text-document.xml"), "acme").unwrap();
        let s = items[0].clone().unwrap();
        assert!(!s.headline.is_empty());
        assert!(s.body_html.len() > 100, "{}", s.body_html);
        assert_eq!(s.located, "New York, NY");
    }

    #[test]
    fn canceled_and_correction_and_bad_urgency() {
        let doc = r#"<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/" guid="g1" version="3">
          <itemMeta><pubStatus qcode="stat:canceled"/><signal qcode="sig:correction"/></itemMeta>
          <contentMeta><urgency>1</urgency><headline>Kill</headline></contentMeta>
          <contentSet><inlineXML contenttype="application/xhtml+xml"><html><body><p>x</p></body></html></inlineXML></contentSet>
        </newsItem>"#;
        let s = parse(doc, "w").unwrap()[0].clone().unwrap();
        assert_eq!(s.pubstatus, PubStatus::Canceled as i32);
        assert_eq!(s.signal, Signal::Correction as i32);
        assert_eq!(s.urgency, 1);
        assert_eq!(s.body_html, "<p>x</p>");
        let bad = doc.replace("<urgency>1</urgency>", "<urgency>soon</urgency>");
        assert_eq!(
            parse(&bad, "w").unwrap()[0].clone().unwrap_err().field,
            "urgency"
        );
        assert!(parse("<newsItem", "w").is_err());
    }
}
