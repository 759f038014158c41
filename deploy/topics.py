#!/usr/bin/env python3
"""Writes the deploy files' topic lists from the one list, deploy/topics.tsv.

    deploy/topics.py write    rewrite deploy/compose-topics.sh's TOPICS block and
                              k8s/base/kafka/topics.yaml from deploy/topics.tsv
    deploy/topics.py check    exit 1 naming each file that differs from what `write` would write

The services read deploy/topics.tsv at compile time and deploy/stack.sh reads it at run time;
compose's kafka-init and Strimzi cannot, so they get generated copies (`just topics`).
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "deploy", "topics.tsv")
COMPOSE = os.path.join(ROOT, "deploy", "compose-topics.sh")
STRIMZI = os.path.join(ROOT, "k8s", "base", "kafka", "topics.yaml")

STRIMZI_HEAD = """\
# Every Newsroom topic (ARCHITECTURE.md), as Strimzi KafkaTopic resources for the Strimzi
# cluster `newsroom` (label strimzi.io/cluster). Generated from deploy/topics.tsv by
# `just topics` (do not edit by hand); `just k8s-validate` checks it agrees with the table, and
# that no KEDA ScaledObject allows more replicas than its topic has partitions.
#
# Partitions can be raised, never lowered (k8s/README.md, "Before the night"). The base asks for
# 3 replicas with min.insync.replicas=2 (the producers use acks=all); the dev overlay lowers
# both to 1 for a one-broker cluster.
"""


def rows(path=TABLE):
    """(name, partitions, retention, description) per topic, in the table's order."""
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        name, partitions, retention, *rest = line.split("\t")
        out.append((name, int(partitions), retention, rest[0] if rest else ""))
    return out


def compose_block(topics):
    return "".join(f"{n} {p} {r}\n" for n, p, r, _ in topics)


def compose_file(topics):
    text = open(COMPOSE, encoding="utf-8").read()
    return re.sub(r'^TOPICS="\n.*?^"', lambda _: 'TOPICS="\n' + compose_block(topics) + '"',
                  text, count=1, flags=re.S | re.M)


def strimzi_file(topics):
    docs = []
    for name, partitions, retention, description in topics:
        config = ["    cleanup.policy: compact"] if retention == "compact" else [
            "    cleanup.policy: delete",
            f"    retention.ms: {int(retention) * 86400000}  # {retention} days",
        ]
        docs.append("\n".join([
            f"# {description}",
            "apiVersion: kafka.strimzi.io/v1",
            "kind: KafkaTopic",
            "metadata:",
            f"  name: {name.replace('.', '-')}",
            "  labels:",
            "    strimzi.io/cluster: newsroom",
            "spec:",
            f"  topicName: {name}",
            f"  partitions: {partitions}",
            "  replicas: 3",
            "  config:",
            *config,
            "    min.insync.replicas: 2",
        ]) + "\n")
    return STRIMZI_HEAD + "\n" + "---\n".join(docs)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "check"
    topics = rows()
    wanted = {COMPOSE: compose_file(topics), STRIMZI: strimzi_file(topics)}
    stale = [p for p, text in wanted.items() if open(p, encoding="utf-8").read() != text]
    if mode == "write":
        for path in stale:
            open(path, "w", encoding="utf-8").write(wanted[path])
            print(f"wrote {os.path.relpath(path, ROOT)}")
    elif mode == "check":
        for path in stale:
            print(f"{os.path.relpath(path, ROOT)} differs from deploy/topics.tsv: run `just topics`",
                  file=sys.stderr)
        sys.exit(1 if stale else 0)
    else:
        sys.exit(f"usage: {sys.argv[0]} write|check")


if __name__ == "__main__":
    main()
