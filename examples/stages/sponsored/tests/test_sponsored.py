import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import sponsored  # noqa: E402


def test_parse_words():
    assert sponsored.parse_words(" Sponsored , paid  partnership,,sponsored ") == [
        "sponsored",
        "paid partnership",
    ]
    assert sponsored.parse_words("") == []


def test_flags_default_phrases():
    flag, matched = sponsored.classify(
        "Ten ways to save on energy",
        "This article was produced in association with Acme Power.\n\nAdvertorial.",
        [],
    )
    assert flag
    assert matched == ["in association with", "advertorial"]


def test_whole_words_and_case():
    flag, matched = sponsored.classify("UNSPONSORED event", "Nothing to see", [])
    assert not flag and matched == []
    flag, matched = sponsored.classify("A Paid-Partnership story", "", [])
    assert matched == ["paid partnership"]


def test_keywords_and_custom_words():
    flag, matched = sponsored.classify("Headline", "Body", ["Sponsored"])
    assert flag and matched == ["sponsored"]
    flag, matched = sponsored.classify("Brand studio: a look", "Body", [], "brand studio, partner content")
    assert flag and matched == ["brand studio"]
    flag, matched = sponsored.classify("Sponsored", "Body", [], "")
    assert not flag and matched == []


def test_clean_story():
    assert sponsored.classify("Parliament votes", "The vote passed.", ["politics"]) == (False, [])
