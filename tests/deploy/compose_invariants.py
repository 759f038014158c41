#!/usr/bin/env python3
"""What the Compose schema cannot check, checked on the resolved project (deploy/compose-validate.sh).

    compose_invariants.py RESOLVED.yaml --topics-from deploy/topics.tsv \
        --compose-topics deploy/compose-topics.sh \
        --collector deploy/otel-collector.yaml --otelcol-gomod tests/deploy/otelcol-check/go.mod

- Kafka (apache/kafka, KRaft), Redis, the OpenTelemetry collector and Jaeger are there;
- each of the four services has a health check, a restart policy, KAFKA_BROKERS, REDIS_URL,
  OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME, listens on 0.0.0.0:<its port>, waits for
  the topics and Redis, and gets longer to stop than its drain;
- the demo loader runs once (`newsroom demo`), after the four services are healthy;
- the topics that kafka-init creates (deploy/compose-topics.sh) are the one list's
  (deploy/topics.tsv, which the code and deploy/stack.sh read), with the same partitions and
  retention;
- every receiver, processor, exporter and extension the collector's pipelines name is defined,
  and the collector image is the version otelcol-check validated the config with.
Exits 1 naming every broken rule.
"""

import argparse
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import topics as topic_lists  # noqa: E402

SERVICES = {"ingest": 50051, "enrichment": 50052, "recommendation": 50053, "notification": 50054}
REQUIRED_ENV = ("KAFKA_BROKERS", "REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME")



def seconds(duration):
    """Compose durations as resolved by compose-go: '30s', '1m30s', or nanoseconds."""
    if isinstance(duration, (int, float)):
        return duration / 1e9
    total = 0.0
    for value, unit in re.findall(r"([\d.]+)(ms|us|ns|h|m|s)", str(duration)):
        total += float(value) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("resolved")
    ap.add_argument("--topics-from", required=True)
    ap.add_argument("--compose-topics", required=True)
    ap.add_argument("--collector", required=True)
    ap.add_argument("--otelcol-gomod", required=True)
    args = ap.parse_args()

    problems = []
    project = yaml.safe_load(open(args.resolved, encoding="utf-8"))
    services = project.get("services", {})

    for name, image in (("kafka", "apache/kafka:"), ("redis", "redis:"),
                        ("otel-collector", "otel/opentelemetry-collector"), ("jaeger", "jaegertracing/")):
        if not str(services.get(name, {}).get("image", "")).startswith(image):
            problems.append(f"service {name}: missing, or not an {image}* image")
    kafka_env = services.get("kafka", {}).get("environment", {}) or {}
    if "controller" not in str(kafka_env.get("KAFKA_PROCESS_ROLES", "")):
        problems.append("kafka: not in KRaft mode (KAFKA_PROCESS_ROLES has no controller)")

    for name, port in SERVICES.items():
        svc = services.get(name)
        if svc is None:
            problems.append(f"service {name}: missing")
            continue
        env = svc.get("environment", {}) or {}
        for key in REQUIRED_ENV:
            if not env.get(key):
                problems.append(f"service {name}: {key} is not set")
        if env.get("NEWSROOM_GRPC_ADDR") != f"0.0.0.0:{port}":
            problems.append(f"service {name}: NEWSROOM_GRPC_ADDR is {env.get('NEWSROOM_GRPC_ADDR')!r}, want 0.0.0.0:{port}")
        hc = svc.get("healthcheck") or {}
        if not hc.get("test") or hc.get("disable"):
            problems.append(f"service {name}: no health check")
        elif str(port + 1000) not in " ".join(hc["test"]):
            problems.append(f"service {name}: health check does not ask its admin port {port + 1000}")
        if svc.get("restart") not in ("always", "unless-stopped", "on-failure"):
            problems.append(f"service {name}: restart policy {svc.get('restart')!r}")
        deps = svc.get("depends_on", {}) or {}
        if deps.get("kafka-init", {}).get("condition") != "service_completed_successfully":
            problems.append(f"service {name}: does not wait for kafka-init to create the topics")
        if deps.get("redis", {}).get("condition") != "service_healthy":
            problems.append(f"service {name}: does not wait for a healthy Redis")
        drain = int(env.get("NEWSROOM_DRAIN_TIMEOUT_MS", 10000)) / 1000
        grace = seconds(svc.get("stop_grace_period", "10s"))
        if grace <= drain:
            problems.append(f"service {name}: stop_grace_period {grace}s is not longer than the drain {drain}s")

    demo = services.get("demo")
    if demo is None:
        problems.append("service demo: missing (the one-shot demo loader)")
    else:
        if (demo.get("command") or [None])[0] != "demo":
            problems.append(f"service demo: command {demo.get('command')} does not run `newsroom demo`")
        if demo.get("restart", "no") != "no":
            problems.append("service demo: a one-shot loader must not restart")
        deps = demo.get("depends_on", {}) or {}
        for name in SERVICES:
            if deps.get(name, {}).get("condition") != "service_healthy":
                problems.append(f"service demo: does not wait for a healthy {name}")

    want = topic_lists.from_table(args.topics_from)
    for path in (args.compose_topics,):
        problems += topic_lists.differences(want, topic_lists.from_shell(path), "deploy/topics.tsv",
                                            os.path.basename(path))

    collector = yaml.safe_load(open(args.collector, encoding="utf-8"))
    svc = collector.get("service", {})
    for ext in svc.get("extensions", []):
        if ext not in (collector.get("extensions") or {}):
            problems.append(f"{args.collector}: extension {ext} is used but not defined")
    if not svc.get("pipelines"):
        problems.append(f"{args.collector}: no pipelines")
    for pname, pipeline in (svc.get("pipelines") or {}).items():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                if component not in (collector.get(section) or {}):
                    problems.append(f"{args.collector}: pipeline {pname} uses {section[:-1]} {component}, not defined")
        if not pipeline.get("receivers") or not pipeline.get("exporters"):
            problems.append(f"{args.collector}: pipeline {pname} needs receivers and exporters")

    image = str(services.get("otel-collector", {}).get("image", ""))
    gomod = open(args.otelcol_gomod, encoding="utf-8").read()
    checked = re.search(r"go\.opentelemetry\.io/collector/otelcol v(\S+)", gomod)
    if not checked or not image.endswith(":" + checked.group(1)):
        problems.append(f"otel-collector image {image!r} is not the version otelcol-check validates "
                        f"the config with ({checked.group(1) if checked else '?'}, {args.otelcol_gomod})")

    for p in problems:
        print(f"compose: {p}", file=sys.stderr)
    if not problems:
        print("compose: invariants hold", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
