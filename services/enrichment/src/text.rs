//! Plain text out of a story: tags dropped, entities decoded, whitespace collapsed; paragraphs,
//! sentences and words. [`StoryText`] is computed once per story and shared by every stage.

use newsroom_proto::v1::Story;

/// A story's text, ready for the stages.
#[derive(Debug, Clone, Default)]
pub struct StoryText {
    pub headline: String,
    /// The standfirst, else the first paragraph of the body.
    pub lead: String,
    /// Body paragraphs as plain text (the standfirst first, when there is one).
    pub paragraphs: Vec<String>,
    /// Headline, standfirst and body ([`story_text`]).
    pub full: String,
}

impl StoryText {
    pub fn new(story: &Story) -> Self {
        let mut paragraphs = Vec::new();
        let standfirst = html_to_text(&story.standfirst);
        if !standfirst.is_empty() {
            paragraphs.push(standfirst.clone());
        }
        paragraphs.extend(html_paragraphs(&story.body_html));
        let lead = if standfirst.is_empty() {
            paragraphs.first().cloned().unwrap_or_default()
        } else {
            standfirst
        };
        StoryText {
            headline: html_to_text(&story.headline),
            lead,
            full: story_text(story),
            paragraphs,
        }
    }

    /// The body without the headline (paragraphs joined).
    pub fn body(&self) -> String {
        self.paragraphs.join("\n")
    }
}

/// The body's paragraphs: split at `<p>`, `<br>`, `<div>`, headings and list items, or at blank
/// lines in plain text; empty ones dropped.
pub fn html_paragraphs(html: &str) -> Vec<String> {
    let mut marked = String::with_capacity(html.len() + 16);
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        marked.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('>') else {
            marked.push_str(after);
            rest = "";
            break;
        };
        let name: String = after[1..end]
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let block = matches!(
            name.as_str(),
            "p" | "br" | "div" | "li" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote"
        );
        marked.push_str(if block { "\n\n" } else { " " });
        marked.push_str(&after[..end + 1].replace('\n', " "));
        rest = &after[end + 1..];
    }
    marked.push_str(rest);
    marked
        .split("\n\n")
        .map(html_to_text)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Sentences of a plain-text paragraph: split after `.`, `!` or `?` (and closing quotes) when a
/// space and an upper-case letter, a digit or an opening quote follow. Abbreviations such as
/// "Mr." and initials ("J. Smith") do not end a sentence.
pub fn sentences(paragraph: &str) -> Vec<&str> {
    const ABBREVIATIONS: &[&str] = &[
        "mr", "mrs", "ms", "dr", "prof", "st", "mt", "jr", "sr", "co", "corp", "inc", "ltd", "no",
        "vs", "gen", "sen", "rep", "gov", "lt", "col", "capt", "sgt", "u.s", "u.k", "e.g", "i.e",
    ];
    let mut out = Vec::new();
    let bytes = paragraph.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if matches!(c, b'.' | b'!' | b'?') {
            let mut end = i + 1;
            // Closing quotes and brackets belong to the sentence.
            while end < paragraph.len() {
                let rest = &paragraph[end..];
                let Some(ch) = rest.chars().next() else { break };
                if matches!(ch, '"' | '\'' | '’' | '”' | ')') {
                    end += ch.len_utf8();
                } else {
                    break;
                }
            }
            let next = paragraph[end..].chars().next();
            let after = paragraph[end..].trim_start().chars().next();
            let boundary = next.is_some_and(char::is_whitespace)
                && after.is_some_and(|a| {
                    a.is_uppercase() || a.is_ascii_digit() || matches!(a, '"' | '“' | '‘' | '\'')
                });
            let word_before: String = paragraph[start..i]
                .rsplit(|ch: char| ch.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_lowercase();
            let abbreviation = c == b'.'
                && (ABBREVIATIONS.contains(&word_before.as_str())
                    || (word_before.chars().count() == 1
                        && word_before.chars().all(char::is_alphabetic)));
            if (boundary && !abbreviation) || next.is_none() {
                let s = paragraph[start..end].trim();
                if !s.is_empty() {
                    out.push(s);
                }
                start = end;
            }
            i = end;
            continue;
        }
        i += 1;
    }
    let tail = paragraph[start..].trim();
    if !tail.is_empty() {
        out.push(tail);
    }
    out
}

/// The story's readable text: headline, standfirst and body, without markup.
pub fn story_text(story: &Story) -> String {
    let mut out = String::with_capacity(story.body_html.len() + story.headline.len() + 64);
    out.push_str(&story.headline);
    out.push_str(".\n");
    if !story.standfirst.is_empty() {
        out.push_str(&html_to_text(&story.standfirst));
        out.push('\n');
    }
    out.push_str(&html_to_text(&story.body_html));
    out
}

/// Drops tags (and the content of `script` / `style`), decodes entities, collapses whitespace.
pub fn html_to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('>') else {
            // A stray '<' is text.
            text.push_str(after);
            rest = "";
            break;
        };
        let tag = after[1..end].trim_start_matches('/').to_ascii_lowercase();
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &after[end + 1..];
        if (name == "script" || name == "style") && !after[1..].starts_with('/') {
            let close = format!("</{name}");
            rest = match rest.to_ascii_lowercase().find(&close) {
                Some(i) => rest[i..].find('>').map_or("", |j| &rest[i + j + 1..]),
                None => "",
            };
        }
        // Block-level tags separate words.
        text.push(' ');
    }
    text.push_str(rest);
    let decoded = decode_entities(&text);
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| match &after[1..e] {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            "mdash" => Some('—'),
            "ndash" => Some('–'),
            "rsquo" | "lsquo" => Some('\''),
            "rdquo" | "ldquo" => Some('"'),
            num if num.starts_with("#x") || num.starts_with("#X") => {
                u32::from_str_radix(&num[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            num if num.starts_with('#') => num[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        });
        match (decoded, end) {
            (Some(c), Some(e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            _ => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Lower-case words (letters and digits, apostrophes inside words kept).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '’'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_dropped_and_entities_decoded() {
        let t =
            html_to_text("<p>Tom &amp; Jerry</p><script>alert(1)</script><p>caf&#233; &lt;3</p>");
        assert_eq!(t, "Tom & Jerry café <3");
    }

    #[test]
    fn paragraphs_and_sentences_split_where_a_reader_would() {
        let p = html_paragraphs(
            "<p>First one.</p><p>Mr. Smith met Dr. Jones in the U.S. on Monday. He said \"hello.\" Then 2 left!</p>",
        );
        assert_eq!(p.len(), 2);
        let s = sentences(&p[1]);
        assert_eq!(
            s,
            [
                "Mr. Smith met Dr. Jones in the U.S. on Monday.",
                "He said \"hello.\"",
                "Then 2 left!"
            ]
        );
        let plain = html_paragraphs("one para\n\nanother para");
        assert_eq!(plain, ["one para", "another para"]);
    }

    #[test]
    fn words_are_counted_without_punctuation() {
        let n = words("It's a \"big\" day — 2022, in Wuzhen.").count();
        assert_eq!(n, 7);
    }
}
