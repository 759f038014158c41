//! Normalisation of a story's fields before it is fingerprinted and published.
//!
//! - HTML is sanitised with ammonia (a whitelist sanitiser on html5ever): scripts, styles,
//!   event handlers and `javascript:` links go; paragraphs, lists, emphasis, quotes, tables,
//!   images and safe links stay, links get `rel="noopener noreferrer"`.
//! - Text fields have their whitespace collapsed.
//! - URLs are made canonical: scheme and host lower-case, default port, fragment and tracking
//!   parameters (`utm_*`, `fbclid`, `gclid`) removed.
//! - Language tags follow BCP 47 casing (`EN_us` → `en-US`).
//! - Timestamps are already UTC (`google.protobuf.Timestamp`).

use std::sync::LazyLock;

use newsroom_proto::v1::Story;

static SANITISER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.link_rel(Some("noopener noreferrer"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect());
    b
});

/// Sanitised HTML.
pub fn sanitise_html(html: &str) -> String {
    SANITISER.clean(html).to_string().trim().to_owned()
}

/// Whitespace runs collapsed to one space, trimmed.
pub fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical form of an http(s) URL, or `None` when it is not one.
pub fn canonical_url(raw: &str) -> Option<String> {
    let mut url = url::Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_fragment(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !(k.starts_with("utm_") || k == "fbclid" || k == "gclid"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Some(url.to_string())
}

/// BCP 47 casing: language lower, script title, region upper (`zh_hant_tw` → `zh-Hant-TW`).
pub fn language_tag(raw: &str) -> String {
    raw.trim()
        .split(['-', '_'])
        .filter(|p| !p.is_empty())
        .enumerate()
        .map(|(i, p)| match (i, p.len()) {
            (0, _) => p.to_ascii_lowercase(),
            (_, 2) => p.to_ascii_uppercase(),
            (_, 4) => {
                let lower = p.to_ascii_lowercase();
                lower[..1].to_ascii_uppercase() + &lower[1..]
            }
            _ => p.to_ascii_lowercase(),
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Normalises a story in place (the URL must already be known to be http(s)).
pub fn story(s: &mut Story) {
    s.headline = collapse_whitespace(&s.headline);
    s.standfirst = collapse_whitespace(&s.standfirst);
    s.body_html = sanitise_html(&s.body_html);
    s.language = language_tag(&s.language);
    s.section = collapse_whitespace(&s.section);
    s.located = collapse_whitespace(&s.located);
    for list in [&mut s.authors, &mut s.tags, &mut s.subjects] {
        for item in list.iter_mut() {
            *item = collapse_whitespace(item);
        }
        list.retain(|i| !i.is_empty());
    }
    if let Some(url) = canonical_url(&s.url) {
        s.url = url;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_styles_handlers_and_javascript_links_go() {
        let html = r#"<p onclick="steal()">Hello <b>world</b></p><script>alert(1)</script>
            <style>p{}</style><a href="javascript:alert(1)">x</a>
            <a href="https://example.com/a">safe</a><ul><li>one</li></ul>"#;
        let clean = sanitise_html(html);
        for gone in ["script", "style", "onclick", "javascript:", "alert"] {
            assert!(!clean.contains(gone), "{gone} in {clean}");
        }
        for kept in [
            "<p>",
            "<b>world</b>",
            "href=\"https://example.com/a\"",
            "<li>one</li>",
            "noopener",
        ] {
            assert!(clean.contains(kept), "{kept} not in {clean}");
        }
    }

    #[test]
    fn urls_become_canonical() {
        assert_eq!(
            canonical_url("HTTPS://Example.COM:443/News/a?utm_source=x&id=7#top").as_deref(),
            Some("https://example.com/News/a?id=7")
        );
        assert_eq!(canonical_url("ftp://example.com/x"), None);
    }

    #[test]
    fn language_tags_get_bcp47_casing() {
        assert_eq!(language_tag("EN_us"), "en-US");
        assert_eq!(language_tag("zh_hant_tw"), "zh-Hant-TW");
        assert_eq!(language_tag("de"), "de");
        assert_eq!(language_tag(""), "");
    }
}
