"""Newsroom enrichment stage "sponsored": flags paid / sponsored content.

Built into a WebAssembly component (world newsroom:stage/stage@0.1.0) by componentize-py.
Config: `words` = comma-separated phrases (default: sponsored.DEFAULT_WORDS).
Writes: `flag` ("true"/"false") and `matched` (the phrases found, comma-separated).
"""

import wit_world
from wit_world.imports import types

import sponsored


class WitWorld(wit_world.WitWorld):
    def manifest(self) -> types.Manifest:
        return types.Manifest(
            name="sponsored",
            version="0.1.0",
            reads=["story"],
            writes=["flag", "matched"],
        )

    def run(self, input: types.Input) -> list[types.Field]:
        config = dict(input.config)
        story = input.story
        flag, matched = sponsored.classify(
            story.headline, story.body, story.keywords, config.get("words")
        )
        return [
            types.Field(name="flag", value="true" if flag else "false"),
            types.Field(name="matched", value=",".join(matched)),
        ]
