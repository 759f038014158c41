"""Plain logic of the "sponsored" stage (no component imports, so pytest can test it)."""

import re

DEFAULT_WORDS = (
    "sponsored,paid partnership,advertisement feature,in association with,"
    "promoted content,advertorial"
)


def parse_words(value):
    """The phrases of a comma-separated config value: trimmed, lower-cased, no empties/duplicates."""
    seen = []
    for part in (value or "").split(","):
        phrase = " ".join(part.split()).lower()
        if phrase and phrase not in seen:
            seen.append(phrase)
    return seen


def _pattern(phrase):
    # Whole words only; any run of whitespace (or a hyphen) between the words of a phrase.
    words = [re.escape(w) for w in phrase.split(" ")]
    return re.compile(r"(?<!\w)" + r"[\s\-]+".join(words) + r"(?!\w)", re.IGNORECASE)


def find(phrases, texts):
    """The phrases (in config order) that occur in any of the texts."""
    return [p for p in phrases if any(_pattern(p).search(t) for t in texts if t)]


def classify(headline, body, keywords, words_config=None):
    """Returns (flag, matched) for a story: flag is True when any phrase occurs in the
    headline, the body or one of the keywords."""
    phrases = parse_words(DEFAULT_WORDS if words_config is None else words_config)
    matched = find(phrases, [headline, body] + list(keywords))
    return bool(matched), matched
