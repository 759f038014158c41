import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import words  # noqa: E402


def test_word_count():
    assert words.word_count("") == 0
    assert words.word_count("One two\n\nthree  four.") == 4
