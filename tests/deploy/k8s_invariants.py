#!/usr/bin/env python3
"""What a schema cannot check in a rendered overlay, checked here (run by deploy/k8s-validate.sh).

    k8s_invariants.py --topics-from deploy/topics.tsv RENDERED.yaml [RENDERED.yaml ...]

For each rendered overlay:
- every topic of the one list (deploy/topics.tsv) is a KafkaTopic with the same
  partitions and the same retention or compaction, and there is no other;
- every KEDA kafka trigger names a consumer group the services really use, on the topic that
  group reads, a topic that exists; allowIdleConsumers is not true; and the ScaledObject's
  maxReplicaCount is at most the partitions of its topics (more pods would sit idle);
- enrichment and notification scale on lag (ScaledObject), ingest and recommendation on CPU
  (HPA), and a Deployment under an autoscaler sets no `replicas` (an apply would reset it);
- each Newsroom Deployment has gRPC readiness, liveness and startup probes on its gRPC port
  asking for its own service name, requests and limits, a non-root read-only security context,
  a PodDisruptionBudget, and a termination grace period longer than preStop + drain;
- Kafka access: only notification's KafkaUser may write an alert topic (notifications.alerts*:
  the editors' path), and each Deployment connects as a KafkaUser of this overlay whose
  password Secret is that user's own.
Exits 1 naming every broken rule.
"""

import argparse
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import topics as topic_lists  # noqa: E402

SERVICES = {
    # name: (gRPC port, gRPC health service name)
    "ingest": (50051, "newsroom.v1.IngestService"),
    "enrichment": (50052, "newsroom.v1.EnrichmentService"),
    "recommendation": (50053, "newsroom.v1.RecommendationService"),
    "notification": (50054, "newsroom.v1.NotificationService"),
}
# The consumer groups with a fixed name (the services' default NEWSROOM_CONSUMER_GROUP;
# notification's breaking lane appends -stories, its routine lane -alerts), and the topics each
# reads. Notification's audience groups carry the Redis index epoch in their name, so no ScaledObject can name them.
CONSUMER_GROUPS = {
    "newsroom-enrichment": {"stories.raw"},
    "newsroom-recommendation": {"stories.enriched"},
    "newsroom-notification-stories": {"stories.enriched", "notifications.alerts.breaking"},
    "newsroom-notification-alerts": {"notifications.alerts"},
}
LAG_SCALED = {"enrichment", "notification"}
CPU_SCALED = {"ingest", "recommendation"}
# KEDA kafka scaler metadata we allow (KEDA ignores unknown keys silently: a typo would
# quietly fall back to a default).
KAFKA_TRIGGER_KEYS = {
    "bootstrapServers", "bootstrapServersFromEnv", "consumerGroup", "topic", "lagThreshold",
    "activationLagThreshold", "offsetResetPolicy", "allowIdleConsumers", "excludePersistentLag",
    "scaleToZeroOnInvalidOffset", "limitToPartitionsWithLag", "version", "tls", "sasl",
    "partitionLimitation", "ensureEvenDistributionOfPartitions",
}



def kind_map(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def check(path, expected_topics):
    problems = []
    docs = [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d]

    def bad(msg):
        problems.append(msg)

    # Topics.
    topics = {}
    for t in kind_map(docs, "KafkaTopic").values():
        spec = t.get("spec", {})
        name = spec.get("topicName") or t["metadata"]["name"]
        config = spec.get("config", {}) or {}
        if config.get("cleanup.policy") == "compact":
            retention = "compact"
        else:
            ms = int(config.get("retention.ms", -1))
            retention = str(ms // 86400000) if ms % 86400000 == 0 else f"{ms}ms"
        topics[name] = (spec.get("partitions"), retention)
    for problem in topic_lists.differences(expected_topics, topics, "deploy/topics.tsv", "the KafkaTopics"):
        bad(problem)

    # Kafka users: who may write the alert topics.
    users = kind_map(docs, "KafkaUser")
    for uname, u in users.items():
        for acl in ((u.get("spec", {}).get("authorization") or {}).get("acls") or []):
            res = acl.get("resource", {})
            ops = set(acl.get("operations") or [acl.get("operation")])
            if res.get("type") != "topic" or not ops & {"Write", "All"}:
                continue
            name, pattern = res.get("name", ""), res.get("patternType", "literal")
            hits_alerts = (name.startswith("notifications.alerts") and not name.endswith(".dlq")) or (
                pattern == "prefix" and "notifications.alerts".startswith(name)) or name == "*"
            if hits_alerts and uname != "newsroom-notification":
                bad(f"KafkaUser {uname} may write {name} ({pattern}): only notification writes alert topics")

    deployments = {
        n: d for n, d in kind_map(docs, "Deployment").items()
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "newsroom"
    }
    hpas = kind_map(docs, "HorizontalPodAutoscaler")
    scaled = kind_map(docs, "ScaledObject")
    pdbs = kind_map(docs, "PodDisruptionBudget")
    configmaps = [d for d in docs if d.get("kind") == "ConfigMap"]

    # Autoscaling.
    hpa_targets = {h["spec"]["scaleTargetRef"]["name"]: h for h in hpas.values()}
    so_targets = {s["spec"]["scaleTargetRef"]["name"]: s for s in scaled.values()}
    for svc in LAG_SCALED:
        if svc not in so_targets:
            bad(f"{svc}: no KEDA ScaledObject (it scales on consumer lag)")
    for svc in CPU_SCALED:
        h = hpa_targets.get(svc)
        if h is None:
            bad(f"{svc}: no HorizontalPodAutoscaler (it scales on CPU)")
        elif not any(m.get("resource", {}).get("name") == "cpu" for m in h["spec"].get("metrics", [])):
            bad(f"{svc}: its HPA does not scale on CPU")
    for target in list(hpa_targets) + list(so_targets):
        if target not in deployments:
            bad(f"autoscaler targets {target}, which is not a Newsroom Deployment here")
        elif "replicas" in deployments[target]["spec"]:
            bad(f"{target}: Deployment sets replicas although an autoscaler owns the count")
    for so in scaled.values():
        name = so["metadata"]["name"]
        cap = so["spec"].get("maxReplicaCount", 100)
        low = so["spec"].get("minReplicaCount", 0)
        if low > cap:
            bad(f"ScaledObject {name}: minReplicaCount {low} > maxReplicaCount {cap}")
        partitions = []
        for trig in so["spec"].get("triggers", []):
            if trig.get("type") != "kafka":
                continue
            md = trig.get("metadata", {})
            unknown = set(md) - KAFKA_TRIGGER_KEYS
            if unknown:
                bad(f"ScaledObject {name}: unknown kafka trigger metadata {sorted(unknown)}")
            group, topic = md.get("consumerGroup"), md.get("topic")
            if group not in CONSUMER_GROUPS:
                bad(f"ScaledObject {name}: consumer group {group!r} is not one the services use")
            elif topic not in CONSUMER_GROUPS[group]:
                bad(f"ScaledObject {name}: group {group} reads {sorted(CONSUMER_GROUPS[group])}, not {topic}")
            if topic not in topics:
                bad(f"ScaledObject {name}: topic {topic!r} is not a KafkaTopic here")
            else:
                partitions.append(topics[topic][0])
            if str(md.get("allowIdleConsumers", "false")).lower() == "true":
                bad(f"ScaledObject {name}: allowIdleConsumers would scale past the partitions")
            for key in ("lagThreshold", "activationLagThreshold"):
                if key in md and not re.fullmatch(r"\d+", str(md[key])):
                    bad(f"ScaledObject {name}: {key} {md[key]!r} is not a whole number")
        if partitions and cap > max(partitions):
            bad(f"ScaledObject {name}: maxReplicaCount {cap} > {max(partitions)} partitions "
                "(the extra pods would sit idle; add partitions first)")

    # Drain.
    drain_ms = None
    for cm in configmaps:
        if cm["metadata"]["name"].startswith("newsroom-common"):
            drain_ms = int(cm.get("data", {}).get("NEWSROOM_DRAIN_TIMEOUT_MS", 10000))
    if drain_ms is None:
        bad("no newsroom-common ConfigMap")
        drain_ms = 10000

    # Deployments.
    for svc, (port, health) in SERVICES.items():
        d = deployments.get(svc)
        if d is None:
            bad(f"{svc}: no Deployment")
            continue
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            g = (c.get(probe) or {}).get("grpc")
            if not g:
                bad(f"{svc}: {probe} is not a gRPC health probe")
            elif g.get("port") != port or g.get("service") != health:
                bad(f"{svc}: {probe} asks {g.get('service')!r} on port {g.get('port')}, want {health!r} on {port}")
        ports = {p.get("containerPort") for p in c.get("ports", [])}
        if port not in ports or port + 1000 not in ports:
            bad(f"{svc}: container ports {sorted(ports)} lack {port} and {port + 1000}")
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        if env.get("NEWSROOM_GRPC_ADDR") != f"0.0.0.0:{port}":
            bad(f"{svc}: NEWSROOM_GRPC_ADDR is {env.get('NEWSROOM_GRPC_ADDR')!r}, want 0.0.0.0:{port}")
        c_env = {e["name"]: e for e in c.get("env", [])}
        kuser = (c_env.get("KAFKA_SASL_USERNAME") or {}).get("value")
        if users and kuser not in users:
            bad(f"{svc}: KAFKA_SASL_USERNAME {kuser!r} is not a KafkaUser here")
        secret = (((c_env.get("KAFKA_SASL_PASSWORD") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
        if users and secret != kuser:
            bad(f"{svc}: KAFKA_SASL_PASSWORD comes from {secret!r}, not its KafkaUser {kuser!r}'s Secret")
        if "NEWSROOM_CONSUMER_GROUP" in env:
            bad(f"{svc}: NEWSROOM_CONSUMER_GROUP is set, so the ScaledObjects watch the wrong group")
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(part, {}):
                    bad(f"{svc}: no {part}.{r}")
        psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
        if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
            bad(f"{svc}: not runAsNonRoot")
        if csc.get("readOnlyRootFilesystem") is not True:
            bad(f"{svc}: root filesystem is not read-only")
        if csc.get("allowPrivilegeEscalation") is not False:
            bad(f"{svc}: allowPrivilegeEscalation is not false")
        if "ALL" not in (csc.get("capabilities", {}) or {}).get("drop", []):
            bad(f"{svc}: capabilities are not all dropped")
        pre_stop = (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds", 0)
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace <= pre_stop + drain_ms / 1000:
            bad(f"{svc}: terminationGracePeriodSeconds {grace} <= preStop {pre_stop}s + drain {drain_ms / 1000}s")
        labels = d["spec"]["template"]["metadata"]["labels"]
        if not any(all(labels.get(k) == v for k, v in p["spec"]["selector"].get("matchLabels", {}).items())
                   for p in pdbs.values()):
            bad(f"{svc}: no PodDisruptionBudget selects its pods")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topics-from", required=True, help="deploy/topics.tsv")
    ap.add_argument("rendered", nargs="+")
    args = ap.parse_args()
    expected = topic_lists.from_table(args.topics_from)
    failed = 0
    for path in args.rendered:
        problems = check(path, expected)
        for p in problems:
            print(f"{path}: {p}", file=sys.stderr)
        if problems:
            failed += 1
        else:
            print(f"{path}: invariants hold", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
