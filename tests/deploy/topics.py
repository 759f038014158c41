"""The topic lists the deploy files must agree on, read from where they live.

The source of truth is the code: `TOPICS` in crates/platform/src/kafka.rs (what the services
create when a topic is missing). deploy/stack.sh (the local stack), deploy/compose-topics.sh
(the compose stack) and k8s/base/kafka/topics.yaml (Strimzi) must list the same topics with the
same partitions and retention. Each list maps name -> (partitions, retention), where retention
is a number of days as a string, or "compact".
"""

import re
import sys


def from_kafka_rs(path):
    text = open(path, encoding="utf-8").read()
    consts = dict(re.findall(r'pub const (\w+): &str = "([^"]+)";', text))
    block = re.search(r"pub const TOPICS: &\[TopicSpec\] = &\[(.*?)\];", text, re.S)
    if not block:
        sys.exit(f"{path}: no `pub const TOPICS: &[TopicSpec] = &[...]`")
    topics = {}
    for const, partitions, days in re.findall(
            r"spec\(\s*topics::(\w+)\s*,\s*(\d+)\s*,\s*(?:None|Some\((\d+)\))\s*\)", block.group(1)):
        if const not in consts:
            sys.exit(f"{path}: topics::{const} is not a `pub const` in the file")
        topics[consts[const]] = (int(partitions), days or "compact")
    if not topics:
        sys.exit(f"{path}: TOPICS lists no spec(...)")
    return topics


def from_shell(path):
    """The TOPICS="..." block of deploy/stack.sh or deploy/compose-topics.sh."""
    text = open(path, encoding="utf-8").read()
    block = re.search(r'^TOPICS="\n(.*?)^"', text, re.S | re.M)
    if not block:
        sys.exit(f"{path}: no TOPICS=\"...\" block")
    topics = {}
    for line in block.group(1).splitlines():
        if line.strip():
            name, partitions, retention = line.split()
            topics[name] = (int(partitions), retention)
    return topics


def differences(want, got, want_name, got_name):
    """Sentences naming every topic on which `got` differs from `want`."""
    out = []
    for name in sorted(want.keys() - got.keys()):
        out.append(f"topic {name}: in {want_name} {want[name]}, missing from {got_name}")
    for name in sorted(got.keys() - want.keys()):
        out.append(f"topic {name}: in {got_name} but not in {want_name}")
    for name in sorted(want.keys() & got.keys()):
        if want[name] != got[name]:
            out.append(f"topic {name}: {got_name} has partitions/retention {got[name]}, "
                       f"{want_name} {want[name]}")
    return out
