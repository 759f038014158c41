#!/usr/bin/env bash
# The local stack: Apache Kafka (KRaft, single node) on 127.0.0.1:9092 and Redis on
# 127.0.0.1:6379, with every topic of ARCHITECTURE.md.
#
#   deploy/stack.sh up       fetch Kafka once, start Kafka and Redis, create topics (idempotent)
#   deploy/stack.sh down     stop both cleanly
#   deploy/stack.sh status   say what runs
#   (the default broker also has a SASL_SSL listener on 9094 with a SCRAM user, and Redis a TLS
#   port on 6380, with deploy/tls.sh's certificates: the TLS end-to-end run)
#   deploy/stack.sh fetch    only fetch the Kafka jars into the cache
#   deploy/stack.sh kafka-up | kafka-down   only the broker (tests start a second one this way)
#   deploy/stack.sh cluster-up | cluster-down   three KRaft brokers beside the default one
#                            (replication factor 3, min.insync.replicas=2), for the tests and
#                            chaos scenarios that kill a partition leader
#   deploy/stack.sh cluster-kill N | cluster-start N   SIGKILL node N (1-3) / start it again
#   deploy/stack.sh cluster-bootstrap   print the cluster's bootstrap list
#   deploy/stack.sh redis-cluster-up | redis-cluster-down   a Redis Cluster of three masters
#                            on 127.0.0.1:7001-7003 (NEWSROOM_REDIS_CLUSTER_PORT moves the
#                            first), beside the single Redis; prints the REDIS_URL naming it
#   deploy/stack.sh redis-cluster-url   print that REDIS_URL
#
# NEWSROOM_KAFKA_PORT (9092), NEWSROOM_KAFKA_CONTROLLER_PORT (9093) and NEWSROOM_RUN_DIR
# (.run) move the broker, e.g. for a test that restarts its own broker;
# NEWSROOM_KAFKA_ADVERTISED_PORT (the broker's port) is the port clients are told to connect
# to, e.g. a Toxiproxy in front of the broker (deploy/toxiproxy.sh), so no client bypasses it. The cluster's node N
# listens on NEWSROOM_CLUSTER_PORT + 2(N-1) (default 19092, 19094, 19096) with its
# controller on the port after it; its state lives in $NEWSROOM_RUN_DIR/cluster/node-N.
#
# Kafka's jars come from Maven Central through deploy/kafka/pom.xml into
# $NEWSROOM_CACHE (default ~/.cache/newsroom), so a second machine run costs nothing.
# Runtime state (data, logs, pids) lives in .run/ at the project root.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/deploy/kafka/pom.xml")
CACHE=${NEWSROOM_CACHE:-$HOME/.cache/newsroom}
# The cache folder is keyed by the pom, so changing the jar list fetches again.
POM_HASH=$(sha1sum "$ROOT/deploy/kafka/pom.xml" | cut -c1-10)
LIBS="$CACHE/kafka-$KAFKA_VERSION-$POM_HASH/libs"
RUN="${NEWSROOM_RUN_DIR:-$ROOT/.run}"
KAFKA_DIR="$RUN/kafka"
REDIS_DIR="$RUN/redis"
KAFKA_PORT=${NEWSROOM_KAFKA_PORT:-9092}
CONTROLLER_PORT=${NEWSROOM_KAFKA_CONTROLLER_PORT:-9093}
ADVERTISED_PORT=${NEWSROOM_KAFKA_ADVERTISED_PORT:-$KAFKA_PORT}
REDIS_PORT=6379
# Valkey when it is installed (the server we recommend: see the README), else Debian's Redis.
if command -v valkey-server >/dev/null; then REDIS_SERVER=valkey-server; REDIS_CLI=valkey-cli
else REDIS_SERVER=redis-server; REDIS_CLI=redis-cli; fi
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
REDIS_CLUSTER_PORT=${NEWSROOM_REDIS_CLUSTER_PORT:-7001}
REDIS_CLUSTER_PORTS="$REDIS_CLUSTER_PORT $((REDIS_CLUSTER_PORT + 1)) $((REDIS_CLUSTER_PORT + 2))"
REDIS_CLUSTER_URL=$(for p in $REDIS_CLUSTER_PORTS; do printf 'redis://127.0.0.1:%s,' "$p"; done | sed 's/,$//')
# The secure side of the default stack (the TLS end-to-end run): a SASL_SSL listener with
# SCRAM-SHA-512 on the broker and a TLS port on Redis, with deploy/tls.sh's certificates.
# Brokers started with another NEWSROOM_KAFKA_PORT (tests, the cluster) have none.
SECURE_KAFKA_PORT=${NEWSROOM_KAFKA_SASL_SSL_PORT:-$([ "$KAFKA_PORT" = 9092 ] && echo 9094 || true)}
SECURE_REDIS_PORT=6380
TLS_DIR="$RUN/tls"
SCRAM_USER=newsroom
SCRAM_PASSWORD=newsroom-local-scram

# name partitions retention_days(or "compact"), from the one list (deploy/topics.tsv)
TOPICS=$(awk -F'	' '!/^#/ && NF >= 3 { print $1, $2, $3 }' "$ROOT/deploy/topics.tsv")

log() { printf '\033[1mstack:\033[0m %s\n' "$*" >&2; }
# shellcheck source=deploy/proc.sh
. "$ROOT/deploy/proc.sh"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fetch_kafka() {
  if [ -f "$LIBS/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { log "mvn not found: install Maven (apt-get install maven)"; exit 1; }
  log "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $LIBS (once)"
  rm -rf "$LIBS"
  mvn -q -B -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$LIBS"
  touch "$LIBS/.complete"
}

kafka_tool() {
  java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
       -cp "$LIBS/*" "$@"
}

# write_kafka_config: the broker of $KAFKA_DIR, node $NODE_ID on $KAFKA_PORT/$CONTROLLER_PORT,
# its quorum ($QUORUM: the single node's own controller unless the cluster sets it), with
# $RF replicas per partition and $MIN_ISR of them in sync for an acknowledged write.
NODE_ID=1
QUORUM="controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT"
RF=1
MIN_ISR=1
write_kafka_config() {
  mkdir -p "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
  cat > "$KAFKA_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=$NODE_ID
$QUORUM
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT${SECURE_KAFKA_PORT:+,SASL_SSL://127.0.0.1:$SECURE_KAFKA_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:$ADVERTISED_PORT${SECURE_KAFKA_PORT:+,SASL_SSL://127.0.0.1:$SECURE_KAFKA_PORT}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=3
default.replication.factor=$RF
offsets.topic.replication.factor=$RF
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=$RF
transaction.state.log.min.isr=$MIN_ISR
share.coordinator.state.topic.replication.factor=$RF
share.coordinator.state.topic.min.isr=$MIN_ISR
min.insync.replicas=$MIN_ISR
# Local nodes: no reason to wait for more group members before the first assignment.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.check.interval.ms=60000
log.segment.bytes=67108864
PROPS
  if [ -n "$SECURE_KAFKA_PORT" ]; then
    cat >> "$KAFKA_DIR/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/server.p12
ssl.keystore.password=newsroom-local-tls
ssl.key.password=newsroom-local-tls
ssl.client.auth=none
PROPS
  fi
  cat > "$KAFKA_DIR/log4j2.properties" <<PROPS
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $KAFKA_DIR/logs/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = org.apache.kafka
logger.kafka.level = warn
logger.k.name = kafka
logger.k.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
PROPS
}

start_kafka() {
  if port_open $KAFKA_PORT; then
    log "Kafka already answers on $BOOTSTRAP"
    if [ -n "$SECURE_KAFKA_PORT" ] && ! port_open "$SECURE_KAFKA_PORT"; then
      log "(it has no SASL_SSL listener on $SECURE_KAFKA_PORT: 'just down' then 'just up' for the TLS run)"
    fi
    return 0
  fi
  fetch_kafka
  [ -z "$SECURE_KAFKA_PORT" ] || "$ROOT/deploy/tls.sh"
  write_kafka_config
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    log "formatting Kafka storage (KRaft)"
    local cluster_id
    cluster_id=$(kafka_tool kafka.tools.StorageTool random-uuid | tail -n 1)
    kafka_tool kafka.tools.StorageTool format --standalone -t "$cluster_id" \
      -c "$KAFKA_DIR/server.properties" >/dev/null
  fi
  # 1 GiB of heap: a development broker that has run the suite many times holds thousands of
  # partitions (the test kit deletes its topics, a test that panics leaves them), and 512 MiB
  # ran out at ~15,000.
  launch_kafka 1g
  wait_kafka
}

# launch_kafka HEAP: start the broker of $KAFKA_DIR in the background.
launch_kafka() {
  log "starting Kafka $KAFKA_VERSION on $BOOTSTRAP (node $NODE_ID)"
  nohup java -Xms256m "-Xmx$1" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" -cp "$LIBS/*" \
    kafka.Kafka "$KAFKA_DIR/server.properties" > "$KAFKA_DIR/logs/stdout.log" 2>&1 &
  echo $! > "$KAFKA_DIR/pid"
}

# wait_kafka: until the broker of $KAFKA_DIR answers a topic listing (so its quorum is up).
wait_kafka() {
  for _ in $(seq 1 120); do
    if port_open $KAFKA_PORT && kafka_tool org.apache.kafka.tools.TopicCommand \
         --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1; then
      log "Kafka is up on $BOOTSTRAP"; return 0
    fi
    if ! alive "$(cat "$KAFKA_DIR/pid")"; then
      log "Kafka exited; last lines of its log:"; tail -n 30 "$KAFKA_DIR/logs/stdout.log" "$KAFKA_DIR/logs/server.log" >&2 || true
      exit 1
    fi
    sleep 1
  done
  log "Kafka did not answer within 120 s (see $KAFKA_DIR/logs)"; exit 1
}

# The three-node cluster: node N's client and controller ports, and its directory.
CLUSTER_PORT=${NEWSROOM_CLUSTER_PORT:-19092}
CLUSTER_DIR="$RUN/cluster"
CLUSTER_VOTERS=$(for n in 1 2 3; do printf '%s%d@127.0.0.1:%d' "${sep:-}" $n $((CLUSTER_PORT + 2 * (n - 1) + 1)); sep=,; done)
CLUSTER_BOOTSTRAP=$(for n in 1 2 3; do printf '%s127.0.0.1:%d' "${sep2:-}" $((CLUSTER_PORT + 2 * (n - 1))); sep2=,; done)

# cluster_node N: point the broker variables at node N of the cluster.
cluster_node() {
  case "$1" in 1|2|3) ;; *) log "no cluster node '$1' (1, 2 or 3)"; exit 64 ;; esac
  NODE_ID=$1
  KAFKA_PORT=$((CLUSTER_PORT + 2 * (NODE_ID - 1)))
  ADVERTISED_PORT=$KAFKA_PORT
  CONTROLLER_PORT=$((KAFKA_PORT + 1))
  SECURE_KAFKA_PORT=""
  BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
  KAFKA_DIR="$CLUSTER_DIR/node-$NODE_ID"
  QUORUM="controller.quorum.voters=$CLUSTER_VOTERS"
  RF=3
  MIN_ISR=2
}

cluster_up() {
  fetch_kafka
  local cluster_id="" n
  for n in 1 2 3; do
    cluster_node $n
    write_kafka_config
    if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
      [ -n "$cluster_id" ] || cluster_id=$(kafka_tool kafka.tools.StorageTool random-uuid | tail -n 1)
      kafka_tool kafka.tools.StorageTool format -t "$cluster_id" \
        -c "$KAFKA_DIR/server.properties" >/dev/null
    fi
  done
  # All three first: a node answers only once a quorum of controllers (two) is up.
  for n in 1 2 3; do
    cluster_node $n
    if port_open $KAFKA_PORT; then log "node $n already answers on $BOOTSTRAP"; continue; fi
    launch_kafka 512m
  done
  for n in 1 2 3; do cluster_node $n; wait_kafka; done
  log "cluster up: $CLUSTER_BOOTSTRAP (replication factor 3, min.insync.replicas 2)"
}

install_redis() {
  if ! command -v "$REDIS_SERVER" >/dev/null; then
    log "installing redis-server (Debian package)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y -q redis-server >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q redis-server >/dev/null; }
  fi
}

start_redis() {
  if port_open $REDIS_PORT; then log "Redis already answers on 127.0.0.1:$REDIS_PORT"; return 0; fi
  install_redis
  mkdir -p "$REDIS_DIR"
  "$ROOT/deploy/tls.sh"
  log "starting Redis on 127.0.0.1:$REDIS_PORT (TLS on $SECURE_REDIS_PORT)"
  "$REDIS_SERVER" --bind 127.0.0.1 --port $REDIS_PORT --daemonize yes \
    --tls-port $SECURE_REDIS_PORT --tls-cert-file "$TLS_DIR/server.pem" \
    --tls-key-file "$TLS_DIR/server.key" --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients no \
    --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/pid" --logfile "$REDIS_DIR/redis.log" \
    --save "" --appendonly no
  for _ in $(seq 1 50); do
    if "$REDIS_CLI" -p $REDIS_PORT ping 2>/dev/null | grep -q PONG; then log "Redis is up"; return 0; fi
    sleep 0.1
  done
  log "Redis did not answer (see $REDIS_DIR/redis.log)"; exit 1
}

# A Redis Cluster of three masters (no replicas: the tests need the slot routing, not
# failover), each node its own directory under $RUN/redis-cluster. Idempotent.
redis_cluster_up() {
  install_redis
  local p dir
  for p in $REDIS_CLUSTER_PORTS; do
    dir="$RUN/redis-cluster/$p"
    if port_open "$p"; then continue; fi
    mkdir -p "$dir"; rm -f "$dir/nodes.conf"
    "$REDIS_SERVER" --bind 127.0.0.1 --port "$p" --daemonize yes --cluster-enabled yes \
      --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 5000 \
      --dir "$dir" --pidfile "$dir/pid" --logfile "$dir/redis.log" --save "" --appendonly no
  done
  for p in $REDIS_CLUSTER_PORTS; do
    for _ in $(seq 1 50); do "$REDIS_CLI" -p "$p" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
  done
  if ! "$REDIS_CLI" -p "$REDIS_CLUSTER_PORT" cluster info | grep -q 'cluster_state:ok'; then
    log "forming a Redis Cluster of three masters on $REDIS_CLUSTER_PORTS"
    # shellcheck disable=SC2046
    "$REDIS_CLI" --cluster create $(for p in $REDIS_CLUSTER_PORTS; do echo "127.0.0.1:$p"; done) \
      --cluster-replicas 0 --cluster-yes >/dev/null
    for _ in $(seq 1 100); do
      "$REDIS_CLI" -p "$REDIS_CLUSTER_PORT" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1
    done
  fi
  "$REDIS_CLI" -p "$REDIS_CLUSTER_PORT" cluster info | grep -q 'cluster_state:ok' \
    || { log "the Redis Cluster did not form (see $RUN/redis-cluster/*/redis.log)"; exit 1; }
  log "Redis Cluster up: REDIS_URL=$REDIS_CLUSTER_URL"
}

redis_cluster_down() {
  local p
  for p in $REDIS_CLUSTER_PORTS; do
    if "$REDIS_CLI" -p "$p" ping >/dev/null 2>&1 && [ -f "$RUN/redis-cluster/$p/pid" ]; then
      "$REDIS_CLI" -p "$p" shutdown nosave >/dev/null 2>&1 || true
    fi
    rm -f "$RUN/redis-cluster/$p/nodes.conf"
  done
  log "Redis Cluster stopped"
}

# The SCRAM user the TLS run's services authenticate as (idempotent).
add_scram_user() {
  [ -n "$SECURE_KAFKA_PORT" ] && port_open "$SECURE_KAFKA_PORT" || return 0
  kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$BOOTSTRAP" --alter \
    --add-config "SCRAM-SHA-512=[iterations=4096,password=$SCRAM_PASSWORD]" \
    --entity-type users --entity-name "$SCRAM_USER" >/dev/null
  log "SASL_SSL on 127.0.0.1:$SECURE_KAFKA_PORT (SCRAM-SHA-512 user $SCRAM_USER), Redis TLS on $SECURE_REDIS_PORT"
}

create_topics() {
  local existing
  existing=$(kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --list 2>/dev/null)
  echo "$TOPICS" | while read -r name partitions retention; do
    [ -n "$name" ] || continue
    if grep -qx "$name" <<<"$existing"; then continue; fi
    if [ "$retention" = compact ]; then
      cfg=(--config cleanup.policy=compact)
    else
      cfg=(--config cleanup.policy=delete --config retention.ms=$((retention * 86400000)))
    fi
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --create \
      --if-not-exists --topic "$name" --partitions "$partitions" --replication-factor 1 "${cfg[@]}" >/dev/null
    log "created topic $name ($partitions partitions, $retention)"
  done
}

case "${1:-up}" in
  up)
    start_redis
    start_kafka
    create_topics
    add_scram_user
    ;;
  fetch) fetch_kafka ;;
  kafka-up) start_kafka ;;
  kafka-down) stop_pid Kafka "$KAFKA_DIR/pid" ;;
  cluster-up) cluster_up ;;
  cluster-down)
    # All three at once: the last of them to stop one by one would wait for a quorum that
    # has already gone.
    for n in 1 2 3; do cluster_node $n; stop_pid "Kafka node $n" "$KAFKA_DIR/pid" & done
    wait
    ;;
  cluster-kill)
    cluster_node "${2:-}"
    pid=$(cat "$KAFKA_DIR/pid" 2>/dev/null || true)
    if alive "$pid" java; then
      log "SIGKILL Kafka node $NODE_ID (pid $pid)"; kill -KILL "$pid"
      for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    fi
    ;;
  cluster-start)
    cluster_node "${2:-}"
    fetch_kafka
    if ! port_open $KAFKA_PORT; then launch_kafka 512m; fi
    wait_kafka
    ;;
  cluster-bootstrap) echo "$CLUSTER_BOOTSTRAP" ;;
  redis-cluster-up) redis_cluster_up ;;
  redis-cluster-down) redis_cluster_down ;;
  redis-cluster-url) echo "$REDIS_CLUSTER_URL" ;;
  down)
    stop_pid Kafka "$KAFKA_DIR/pid"
    port_open $REDIS_CLUSTER_PORT && redis_cluster_down
    if "$REDIS_CLI" -p $REDIS_PORT ping >/dev/null 2>&1 && [ -f "$REDIS_DIR/pid" ]; then
      log "stopping Redis"; "$REDIS_CLI" -p $REDIS_PORT shutdown nosave >/dev/null 2>&1 || true
    fi
    ;;
  status)
    port_open $KAFKA_PORT && echo "kafka: up ($BOOTSTRAP)" || echo "kafka: down"
    port_open $REDIS_PORT && echo "redis: up (127.0.0.1:$REDIS_PORT)" || echo "redis: down"
    port_open $REDIS_CLUSTER_PORT && echo "redis cluster: up ($REDIS_CLUSTER_URL)" || echo "redis cluster: down"
    ;;
  *) echo "usage: $0 up|down|status|fetch|kafka-up|kafka-down|cluster-up|cluster-down|cluster-kill N|cluster-start N|cluster-bootstrap|redis-cluster-up|redis-cluster-down|redis-cluster-url" >&2; exit 64 ;;
esac
