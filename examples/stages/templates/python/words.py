"""Plain logic of stage {{name}} (no component imports, so pytest can test it)."""


def word_count(text):
    """The number of whitespace-separated words in text."""
    return len(text.split())
