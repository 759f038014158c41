//! The words of a sentence as the entity rules see them: the word, the punctuation around it,
//! and whether it was a possessive ("Xi's" → "Xi").

/// A word of a sentence.
#[derive(Debug, Clone)]
pub(super) struct Token<'a> {
    /// The word without surrounding punctuation (a possessive stripped).
    pub(super) word: &'a str,
    /// Punctuation right after the word (",", ".", ")", …), empty when none.
    pub(super) after: &'a str,
    /// Punctuation right before it ("(", quotes).
    pub(super) before: &'a str,
    pub(super) possessive: bool,
}

impl Token<'_> {
    pub(super) fn capitalised(&self) -> bool {
        self.word.chars().next().is_some_and(char::is_uppercase)
    }
    pub(super) fn lower(&self) -> String {
        self.word.to_lowercase()
    }
    pub(super) fn acronym(&self) -> bool {
        let letters: Vec<char> = self.word.chars().filter(|c| c.is_alphabetic()).collect();
        (2..=6).contains(&letters.len()) && letters.iter().all(|c| c.is_uppercase())
    }
}

/// The words of a sentence, with the punctuation around each kept apart.
pub(super) fn tokens(sentence: &str) -> Vec<Token<'_>> {
    let is_word_char = |c: char| c.is_alphanumeric() || matches!(c, '\'' | '’' | '-' | '.' | '&');
    let mut out = Vec::new();
    for raw in sentence.split_whitespace() {
        let start = raw.find(|c: char| c.is_alphanumeric() || c == '&');
        let Some(start) = start else {
            continue;
        };
        let end = raw
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_alphanumeric())
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(raw.len());
        // Keep the dots of initials and acronyms ("U.S."): a trailing dot stays when the word
        // has an inner dot.
        let mut end = end.max(start);
        if raw[start..end].contains('.') && raw[end..].starts_with('.') {
            end += 1;
        }
        let mut word = &raw[start..end];
        if !word.chars().all(is_word_char) {
            // Inner punctuation such as "[his": keep the alphanumeric core.
            word = word.trim_matches(|c: char| !c.is_alphanumeric());
        }
        let mut possessive = false;
        for suffix in ["'s", "’s", "s'", "s’"] {
            if word.len() > suffix.len() + 1 && word.ends_with(suffix) {
                let cut = if suffix.starts_with('s') { 1 } else { 0 };
                word = &word[..word.len() - suffix.len() + cut];
                possessive = true;
                break;
            }
        }
        out.push(Token {
            word,
            before: &raw[..start],
            after: &raw[end..],
            possessive,
        });
    }
    out
}
