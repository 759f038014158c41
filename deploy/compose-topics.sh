#!/usr/bin/env bash
# Creates every Newsroom topic on the compose stack's Kafka, with the retention or compaction of
# ARCHITECTURE.md. Run by the one-shot `kafka-init` service of deploy/compose.yaml inside the
# apache/kafka image (which has /opt/kafka/bin); idempotent (--if-not-exists).
#
# The TOPICS block below is written from deploy/topics.tsv, the one list, by `just topics` (do
# not edit it by hand); `just compose-validate` checks it agrees with the table.
set -euo pipefail

BOOTSTRAP=${KAFKA_BROKERS:-kafka:9092}
KAFKA_BIN=${KAFKA_BIN:-/opt/kafka/bin}

# name partitions retention_days(or "compact"), generated from deploy/topics.tsv
TOPICS="
stories.raw 12 7
stories.enriched 12 compact
stories.index 12 compact
stories.held 6 compact
stories.raw.dlq 1 14
stories.enriched.dlq 1 14
interactions 12 30
profiles 6 compact
profiles.dlq 1 14
interactions.dlq 1 14
devices 6 compact
devices.dlq 1 14
notifications.receipts 6 7
notifications.alerts 6 7
notifications.alerts.dlq 1 14
notifications.alerts.breaking 6 7
notifications.alerts.breaking.dlq 1 14
"

for _ in $(seq 1 60); do
  "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1 && break
  sleep 2
done

echo "$TOPICS" | while read -r name partitions retention; do
  [ -n "$name" ] || continue
  if [ "$retention" = compact ]; then
    cfg=(--config cleanup.policy=compact)
  else
    cfg=(--config cleanup.policy=delete --config "retention.ms=$((retention * 86400000))")
  fi
  "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$name" --partitions "$partitions" --replication-factor 1 "${cfg[@]}" >/dev/null
  echo "topic $name: $partitions partitions, $retention"
done
