#!/usr/bin/env bash
# Proves the deploy validators catch what they claim to (`just deploy-test`): each case copies
# the real files into a scratch folder, breaks the copy in one way, runs the validator on it and
# expects it to fail with a message naming the problem. The untouched copies must pass, so a
# failure is the break's doing, not the copy's.
#
#   tests/deploy/run.sh            all cases
#   tests/deploy/run.sh k8s        only the cases whose name starts with "k8s"
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FILTER=${1:-}
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
# One Kubernetes version is enough to prove a break is caught; k8s-validate itself checks two.
export NEWSROOM_K8S_VERSIONS=${NEWSROOM_K8S_VERSIONS_TEST:-1.37.0}

passed=0; failed=0

# Tools first, so that a case's output is about the case.
"$ROOT/deploy/deploy-tools.sh" all >/dev/null || { echo "deploy-tools failed" >&2; exit 1; }

fresh_k8s() { rm -rf "$SCRATCH/k8s"; cp -r "$ROOT/k8s" "$SCRATCH/k8s"; }

fresh_compose() {
  rm -rf "$SCRATCH/c"; mkdir -p "$SCRATCH/c/deploy" "$SCRATCH/c/k8s/base/enrichment" "$SCRATCH/c/data"
  cp "$ROOT/deploy/compose.yaml" "$ROOT/deploy/compose-topics.sh" "$ROOT/deploy/otel-collector.yaml" \
     "$ROOT/deploy/Dockerfile" "$SCRATCH/c/deploy/"
  cp "$ROOT/k8s/base/enrichment/pipeline.toml" "$SCRATCH/c/k8s/base/enrichment/"
}

fresh_docker() { rm -rf "$SCRATCH/d"; mkdir -p "$SCRATCH/d"; cp "$ROOT/deploy/Dockerfile" "$ROOT/README.md" "$SCRATCH/d/"; }

# replace FILE OLD NEW: replace the first line matching OLD (a fixed string), or fail the case.
replace() {
  python3 - "$@" <<'PY' || return 1
import sys
path, old, new = sys.argv[1:4]
text = open(path, encoding="utf-8").read()
if old not in text:
    sys.exit(f"setup: {old!r} not in {path}")
open(path, "w", encoding="utf-8").write(text.replace(old, new, 1))
PY
}

# case NAME EXPECT PATTERN -- COMMAND...: EXPECT is pass or fail; on fail, the output must also
# match PATTERN (an extended regex).
case_() {
  local name=$1 expect=$2 pattern=$3; shift 4
  if [ -n "$FILTER" ] && [[ "$name" != "$FILTER"* ]]; then return; fi
  local out="$SCRATCH/out.txt" rc
  "$@" >"$out" 2>&1; rc=$?
  if [ "$expect" = pass ] && [ $rc -eq 0 ]; then
    echo "ok   $name"; passed=$((passed + 1))
  elif [ "$expect" = fail ] && [ $rc -ne 0 ] && grep -Eq "$pattern" "$out"; then
    echo "ok   $name (fails: $(grep -Eo "$pattern" "$out" | head -n 1))"; passed=$((passed + 1))
  else
    echo "FAIL $name: expected $expect${pattern:+ matching /$pattern/}, exit code $rc; output:"
    sed 's/^/     /' "$out" | tail -n 25
    failed=$((failed + 1))
  fi
}

K8S_VALIDATE="$ROOT/deploy/k8s-validate.sh"
COMPOSE_VALIDATE="$ROOT/deploy/compose-validate.sh"
DOCKERFILE_LINT="$ROOT/deploy/dockerfile-lint.sh"

# --- Kubernetes -------------------------------------------------------------------------------
fresh_k8s
case_ "k8s: the untouched copy validates" pass "" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/ingest/deployment.yaml" "terminationGracePeriodSeconds: 30" "terminationGracePeriodSeconds: thirty"
case_ "k8s: a wrong field type in a Deployment" fail "terminationGracePeriodSeconds': got string, want null or integer" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/enrichment/deployment.yaml" "readinessProbe:" "readinesProbe:"
case_ "k8s: a misspelt field (strict)" fail "additional properties 'readinesProbe' not allowed" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/ingest/deployment.yaml" "  selector:
    matchLabels:
      app.kubernetes.io/name: ingest
" ""
case_ "k8s: a Deployment without its required selector" fail "missing property 'selector'" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/enrichment/scaledobject.yaml" "maxReplicaCount: 12" "maxReplicaCount: twelve"
case_ "k8s: KEDA ScaledObject, wrong type (CRD schema)" fail "maxReplicaCount': got string, want" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/notification/scaledobject.yaml" "pollingInterval: 5" "pollInterval: 5"
case_ "k8s: KEDA ScaledObject, unknown field (CRD schema)" fail "additional properties 'pollInterval' not allowed" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/kafka/topics.yaml" "partitions: 12" "partitions: twelve"
case_ "k8s: Strimzi KafkaTopic, wrong type (CRD schema)" fail "partitions': got string, want" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/overlays/dev/kafka.yaml" "roles: [controller, broker]" "roles: [controller, leader]"
case_ "k8s: Strimzi KafkaNodePool, value outside the enum (CRD schema)" fail "roles/1'?: value must be one of|leader" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/kafka/users.yaml" "      - resource: {type: topic, name: stories.raw, patternType: literal}" "      - resource: {type: topic, name: notifications.alerts, patternType: literal}"
case_ "k8s: a KafkaUser other than notification's writing an alert topic (invariant)" fail "KafkaUser newsroom-ingest may write notifications.alerts" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/recommendation/deployment.yaml" "                  name: newsroom-recommendation" "                  name: newsroom-notification"
case_ "k8s: a Deployment with another user's Kafka password (invariant)" fail "not its KafkaUser 'newsroom-recommendation'" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/kafka/topics.yaml" "apiVersion: kafka.strimzi.io/v1" "apiVersion: kafka.strimzi.io/v1beta9"
case_ "k8s: a kind with no schema is an error, not a skip" fail "could not find schema for KafkaTopic" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/overlays/prod/kustomization.yaml" "  - ../../base" "  - ../../bsae"
case_ "k8s: an overlay that does not render" fail "does not render" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/enrichment/scaledobject.yaml" "maxReplicaCount: 12" "maxReplicaCount: 24"
case_ "k8s: a KEDA cap above the partitions (invariant)" fail "maxReplicaCount 24 > 12 partitions" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/kafka/topics.yaml" "  partitions: 6" "  partitions: 3"
case_ "k8s: a topic that disagrees with deploy/topics.tsv (invariant)" fail "the KafkaTopics has partitions/retention \(3, 'compact'\)" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/notification/scaledobject.yaml" "consumerGroup: newsroom-notification-stories" "consumerGroup: newsroom-notification"
case_ "k8s: lag watched on a group no service uses (invariant)" fail "consumer group 'newsroom-notification' is not one the services use" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/recommendation/deployment.yaml" "service: newsroom.v1.RecommendationService" "service: newsroom.v1.FeedService"
case_ "k8s: a probe asking for the wrong gRPC service (invariant)" fail "recommendation: startupProbe asks 'newsroom.v1.FeedService'" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/ingest/deployment.yaml" "terminationGracePeriodSeconds: 30" "terminationGracePeriodSeconds: 12"
case_ "k8s: a grace period shorter than preStop + drain (invariant)" fail "terminationGracePeriodSeconds 12 <= preStop 5s \+ drain 10" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

fresh_k8s; replace "$SCRATCH/k8s/base/enrichment/deployment.yaml" "readOnlyRootFilesystem: true" "readOnlyRootFilesystem: false"
case_ "k8s: a writable root filesystem (invariant)" fail "enrichment: root filesystem is not read-only" -- "$K8S_VALIDATE" "$SCRATCH/k8s"

# --- Compose ----------------------------------------------------------------------------------
export NEWSROOM_DATA="$SCRATCH/c/data"
fresh_compose
case_ "compose: the untouched copy validates" pass "" -- "$COMPOSE_VALIDATE" "$SCRATCH/c/deploy/compose.yaml"

fresh_compose; replace "$SCRATCH/c/deploy/compose.yaml" "retries: 24" "retries: many"
case_ "compose: a wrong field type" fail "healthcheck.retries" -- "$COMPOSE_VALIDATE" "$SCRATCH/c/deploy/compose.yaml"

fresh_compose; replace "$SCRATCH/c/deploy/compose.yaml" "    restart: unless-stopped" "    restarts: unless-stopped"
case_ "compose: an unknown field (schema)" fail "restarts" -- "$COMPOSE_VALIDATE" "$SCRATCH/c/deploy/compose.yaml"

fresh_compose; replace "$SCRATCH/c/deploy/compose.yaml" "      phone:
        condition: service_healthy" "      telephone:
        condition: service_healthy"
case_ "compose: depends_on an undefined service" fail "undefined service \"telephone\"" -- "$COMPOSE_VALIDATE" "$SCRATCH/c/deploy/compose.yaml"

fresh_compose; rm "$SCRATCH/c/k8s/base/enrichment/pipeline.toml"
case_ "compose: a bind mount whose file is gone" fail "bind mount source .*pipeline.toml does not exist" -- "$COMPOSE_VALIDATE" "$SCRATCH/c/deploy/compose.yaml"

fresh_compose; replace "$SCRATCH/c/deploy/compose.yaml" "      NEWSROOM_GRPC_ADDR: 0.0.0.0:50053" "      NEWSROOM_GRPC_ADDR: 127.0.0.1:50053"
case_ "compose: a service listening on loopback only (invariant)" fail "recommendation: NEWSROOM_GRPC_ADDR is '127.0.0.1:50053'" -- "$COMPOSE_VALIDATE" "$SCRATCH/c/deploy/compose.yaml"

fresh_compose; replace "$SCRATCH/c/deploy/compose.yaml" "  stop_grace_period: 30s" "  stop_grace_period: 5s"
case_ "compose: a stop grace period shorter than the drain (invariant)" fail "stop_grace_period 5.0s is not longer than the drain" -- "$COMPOSE_VALIDATE" "$SCRATCH/c/deploy/compose.yaml"

fresh_compose; replace "$SCRATCH/c/deploy/compose-topics.sh" "stories.raw 12 7" "stories.raw 6 7"
case_ "compose: kafka-init topics that disagree with deploy/topics.tsv (invariant)" fail "topic stories.raw: compose-topics.sh has partitions/retention \(6, '7'\)" -- "$COMPOSE_VALIDATE" "$SCRATCH/c/deploy/compose.yaml"

fresh_compose; replace "$SCRATCH/c/deploy/otel-collector.yaml" "    send_batch_size: 1024" "    send_batch_size: 1024
    send_batch_max: 2048"
case_ "compose: a collector setting the collector does not know" fail "has invalid keys: send_batch_max" -- "$COMPOSE_VALIDATE" "$SCRATCH/c/deploy/compose.yaml"

fresh_compose; replace "$SCRATCH/c/deploy/compose.yaml" "otel/opentelemetry-collector-contrib:0.128.0" "otel/opentelemetry-collector-contrib:0.140.0"
case_ "compose: a collector image other than the version validated (invariant)" fail "is not the version otelcol-check validates" -- "$COMPOSE_VALIDATE" "$SCRATCH/c/deploy/compose.yaml"

fresh_compose; replace "$SCRATCH/c/deploy/otel-collector.yaml" "exporters: [otlp/jaeger, debug]" "exporters: [otlp/tempo, debug]"
case_ "compose: a collector pipeline naming an undefined exporter" fail "otlp/tempo" -- "$COMPOSE_VALIDATE" "$SCRATCH/c/deploy/compose.yaml"

# --- Dockerfile -------------------------------------------------------------------------------
fresh_docker
case_ "dockerfile: the untouched copy lints" pass "" -- "$DOCKERFILE_LINT" "$SCRATCH/d/Dockerfile" "$SCRATCH/d/README.md"

fresh_docker; replace "$SCRATCH/d/Dockerfile" "WORKDIR /src" "RUN cd /src"
case_ "dockerfile: hadolint finds a problem" fail "DL3003" -- "$DOCKERFILE_LINT" "$SCRATCH/d/Dockerfile" "$SCRATCH/d/README.md"

fresh_docker; replace "$SCRATCH/d/Dockerfile" "zlib1g-dev libssl-dev" "zlib1g-dev libssl-dev cmake"
case_ "dockerfile: build packages that the README does not list" fail "build packages differ" -- "$DOCKERFILE_LINT" "$SCRATCH/d/Dockerfile" "$SCRATCH/d/README.md"

fresh_docker; replace "$SCRATCH/d/Dockerfile" "ARG RUST_VERSION=" "ARG RUST_VERSION=1.80.0
ARG UNUSED_RUST_VERSION="
case_ "dockerfile: a Rust image that is not rust-toolchain.toml's" fail "is not rust-toolchain.toml's" -- "$DOCKERFILE_LINT" "$SCRATCH/d/Dockerfile" "$SCRATCH/d/README.md"

# --- process checks (deploy/proc.sh) ------------------------------------------------------------
# A SIGKILLed service the init has not reaped yet is a zombie: `kill -0` still succeeds on it, so
# `deploy/services.sh start` used to say "already running" and start nothing (issue 14).
zombie_is_dead() {
  python3 - "$ROOT/deploy/proc.sh" <<'PY'
import os, signal, subprocess, sys, time
pid = os.fork()
if pid == 0:
    time.sleep(60)
    os._exit(0)
os.kill(pid, signal.SIGKILL)
time.sleep(0.3)  # not reaped: a zombie until waitpid below
check = f'. "{sys.argv[1]}"; kill -0 {pid} || exit 3; if alive {pid}; then echo "a zombie counted as alive"; exit 1; fi'
rc = subprocess.run(["bash", "-c", check]).returncode
os.waitpid(pid, 0)
sys.exit({0: 0, 3: "setup: kill -0 failed on the zombie"}.get(rc, rc))
PY
}
case_ "proc: a zombie is not a running service" pass "" -- zombie_is_dead
case_ "proc: a live process is running, under its name" pass "" -- bash -c ". '$ROOT/deploy/proc.sh'; alive \$\$ bash"
case_ "proc: a live process under another name is not ours" fail "not ours" -- bash -c ". '$ROOT/deploy/proc.sh'; n=newsroom-; alive \$\$ \"\${n}ingest\" || { echo not ours; exit 1; }"

echo
echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
