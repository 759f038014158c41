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
up: stack-up
    cargo build --workspace --bins
    deploy/services.sh start
    target/debug/newsroom demo --data "{{data}}" --webhook http://127.0.0.1:8099/
    @sleep 3
    @echo; echo "The demo reader's feed (target/debug/newsroom feed --user demo):"
    target/debug/newsroom feed --user demo --limit 10
    @echo; echo "Alerts on the demo phone (.run/logs/phone.log):"; grep ALERT .run/logs/phone.log || echo "(none yet)"

# Stop the services and the stack.
down:
    deploy/services.sh stop
    deploy/stack.sh down

# The whole test suite: unit tests and end-to-end tests against real Kafka and Redis.
test: stack-up
    cargo build --workspace --bins
    NEWSROOM_DATA="{{data}}" cargo test --workspace

# Only the end-to-end tests.
e2e: stack-up
    cargo build --workspace --bins
    NEWSROOM_DATA="{{data}}" cargo test -p newsroom-e2e -- --nocapture

# Formatting check and clippy with warnings denied.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

fmt:
    cargo fmt --all
