"""Newsroom enrichment stage "{{name}}" (Python, componentize-py).

The component implements world newsroom:stage/stage@0.1.0 (wit/newsroom-stage.wit).
Raise componentize_py_types.Err("reason") to fail the story in this stage; any other uncaught
exception traps. Built with --stub-wasi: print(), time.time(), files and sockets trap; use
host.log and input.now_ms instead.
"""

import wit_world
from wit_world.imports import host, types

import words


class WitWorld(wit_world.WitWorld):
    def manifest(self) -> types.Manifest:
        return types.Manifest(name="{{name}}", version="0.1.0", reads=["story"], writes=["words"])

    def run(self, input: types.Input) -> list[types.Field]:
        n = words.word_count(input.story.body)
        host.log(host.Level.DEBUG, f"{n} words")
        return [types.Field(name="words", value=str(n))]
