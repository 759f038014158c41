#!/usr/bin/env bash
# Validates the Kubernetes manifests without a cluster (`just k8s-validate`):
#
#   deploy/k8s-validate.sh [K8S_DIR]      default: k8s/ of this repository
#
# 1. every overlay under K8S_DIR/overlays renders with kustomize;
# 2. every rendered resource validates with kubeconform -strict (wrong types, unknown or
#    misspelt fields, duplicate keys) against the Kubernetes schemas of each version in
#    NEWSROOM_K8S_VERSIONS (default: 1.30.0, the oldest we support, and 1.37.0) and against the
#    CRD schemas of KEDA (ScaledObject) and Strimzi (KafkaTopic, Kafka, KafkaNodePool); a kind
#    with no schema is an error, not a skip;
# 3. tests/deploy/k8s_invariants.py checks what no schema can: topics equal the one list
#    (deploy/topics.tsv), KEDA caps within partitions, the consumer groups, probes,
#    security context, PDBs, grace period vs drain.
# Tools and schemas come from deploy/deploy-tools.sh (cached). Exits non-zero on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
K8S_DIR=$(cd "${1:-$ROOT/k8s}" && pwd)
K8S_VERSIONS=${NEWSROOM_K8S_VERSIONS:-1.30.0 1.37.0}
export NEWSROOM_K8S_VERSIONS="$K8S_VERSIONS"

log() { printf '\033[1mk8s-validate:\033[0m %s\n' "$*" >&2; }

TOOLS="$ROOT/deploy/deploy-tools.sh"
KUSTOMIZE=$("$TOOLS" kustomize)
KUBECONFORM=$("$TOOLS" kubeconform)
K8S_SCHEMAS=$("$TOOLS" k8s-schemas)
CRD_SCHEMAS=$("$TOOLS" crd-schemas)

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

overlays=()
for dir in "$K8S_DIR"/overlays/*/; do
  [ -f "$dir/kustomization.yaml" ] && overlays+=("$(basename "$dir")")
done
[ ${#overlays[@]} -gt 0 ] || { log "no overlays under $K8S_DIR/overlays"; exit 1; }

status=0
rendered=()
for overlay in "${overlays[@]}"; do
  if "$KUSTOMIZE" build "$K8S_DIR/overlays/$overlay" > "$OUT/$overlay.yaml" 2> "$OUT/$overlay.err"; then
    log "rendered overlays/$overlay ($(grep -c '^kind:' "$OUT/$overlay.yaml") resources)"
    rendered+=("$OUT/$overlay.yaml")
  else
    log "overlays/$overlay does not render:"; cat "$OUT/$overlay.err" >&2
    status=1
  fi
done

# One kubeconform run per Kubernetes version over every overlay: each schema is compiled once.
for version in $K8S_VERSIONS; do
  [ ${#rendered[@]} -gt 0 ] || break
  if (cd "$OUT" && "$KUBECONFORM" -strict -summary -output text \
         -kubernetes-version "$version" \
         -schema-location "$K8S_SCHEMAS/{{.NormalizedKubernetesVersion}}-local{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json" \
         -schema-location "$CRD_SCHEMAS/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json" \
         "${rendered[@]##*/}") > "$OUT/kc.txt" 2>&1; then
    log "valid for Kubernetes $version: $(tail -n 1 "$OUT/kc.txt")"
  else
    log "INVALID for Kubernetes $version (file = overlay):"
    cat "$OUT/kc.txt" >&2
    status=1
  fi
done

if [ ${#rendered[@]} -gt 0 ]; then
  if python3 "$ROOT/tests/deploy/k8s_invariants.py" --topics-from "$ROOT/deploy/topics.tsv" "${rendered[@]}" 2> "$OUT/inv.txt"; then
    log "invariants hold in every overlay"
  else
    log "invariants broken:"; sed "s|$OUT/||" "$OUT/inv.txt" >&2
    status=1
  fi
fi

[ $status -eq 0 ] && log "ok: ${overlays[*]}" || log "FAILED"
exit $status
