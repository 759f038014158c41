"""The topic lists the deploy files must agree on, read from where they live.

The source of truth is deploy/topics.tsv: the services compile it in (what they create when a
topic is missing), deploy/stack.sh reads it, and `just topics` writes deploy/compose-topics.sh
(the compose stack) and k8s/base/kafka/topics.yaml (Strimzi) from it; those two must list the
same topics with the same partitions and retention. Each list maps name -> (partitions, retention), where retention
is a number of days as a string, or "compact".
"""

import re
import sys


def from_table(path):
    """deploy/topics.tsv: name<TAB>partitions<TAB>days|compact<TAB>description."""
    topics = {}
    for line in open(path, encoding="utf-8"):
        if not line.strip() or line.startswith("#"):
            continue
        name, partitions, retention, *_ = line.rstrip("\n").split("\t")
        topics[name] = (int(partitions), retention)
    if not topics:
        sys.exit(f"{path}: no topic rows")
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
