//! Plain text out of a story: tags dropped, entities decoded, whitespace collapsed, and words.

use newsroom_proto::v1::Story;

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
    fn words_are_counted_without_punctuation() {
        let n = words("It's a \"big\" day — 2022, in Wuzhen.").count();
        assert_eq!(n, 7);
    }
}
