//! Kafka brokers of a test's own, started and struck through `deploy/stack.sh`: one broker
//! ([`OwnBroker`]) a test may stop and start, and a three-node KRaft cluster ([`OwnCluster`],
//! replication factor 3, `min.insync.replicas=2`) whose nodes a test may SIGKILL.

use std::time::Duration;

use newsroom_platform::kafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use newsroom_platform::kafka::rdkafka::util::Timeout;

/// Runs `deploy/stack.sh <args>` with `env`; panics when it fails.
fn stack(args: &[&str], env: &[(&str, String)]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/stack.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .expect("run deploy/stack.sh");
    assert!(
        status.success(),
        "deploy/stack.sh {} failed",
        args.join(" ")
    );
}

/// A broker of this test's own (it is restarted), on other ports, through `deploy/stack.sh`.
/// One at a time: two JVM brokers starting beside the shared one on 2 cores slow every write
/// past the timings these tests assert.
///
/// `KAFKA_BROKERS` of a [`Pipeline::start_with`] points services at it: [`OwnBroker::bootstrap`].
pub struct OwnBroker {
    dir: std::path::PathBuf,
    pub port: u16,
    /// The port clients are told to connect to (a proxy's), when not `port`.
    advertised: Option<u16>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

static OWN_BROKER_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl OwnBroker {
    /// Waits for its turn, then starts the broker on `port` (and `port + 1` for its controller).
    pub async fn start(port: u16) -> Self {
        Self::start_advertising(port, None).await
    }

    /// The same, telling clients to connect to `advertised` (a proxy in front of it, which
    /// must exist first: the broker's own readiness check goes through it).
    pub async fn start_advertising(port: u16, advertised: Option<u16>) -> Self {
        let broker = OwnBroker {
            _turn: OWN_BROKER_TURN.lock().await,
            dir: std::env::temp_dir()
                .join(format!("newsroom-broker-{}", uuid::Uuid::new_v4().simple())),
            port,
            advertised,
        };
        tokio::task::block_in_place(|| broker.stack("kafka-up"));
        broker
    }

    /// Runs `deploy/stack.sh <command>` for this broker (`kafka-down`, `kafka-up`).
    pub fn stack(&self, command: &str) {
        stack(
            &[command],
            &[
                ("NEWSROOM_KAFKA_PORT", self.port.to_string()),
                (
                    "NEWSROOM_KAFKA_CONTROLLER_PORT",
                    (self.port + 1).to_string(),
                ),
                (
                    "NEWSROOM_KAFKA_ADVERTISED_PORT",
                    self.advertised.unwrap_or(self.port).to_string(),
                ),
                ("NEWSROOM_RUN_DIR", self.dir.display().to_string()),
            ],
        );
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.stack("kafka-down");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl OwnBroker {
    /// Its bootstrap address.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.advertised.unwrap_or(self.port))
    }
}

/// Three KRaft brokers of a test's own (`deploy/stack.sh cluster-up`), nodes 1-3 on `port`,
/// `port + 2`, `port + 4`. Takes the same turn as [`OwnBroker`]: three more JVMs beside the
/// shared broker are all 2 cores can carry.
pub struct OwnCluster {
    dir: std::path::PathBuf,
    pub port: u16,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl OwnCluster {
    /// Waits for its turn, then starts the three nodes and waits until each answers.
    pub async fn start(port: u16) -> Self {
        let cluster = OwnCluster {
            _turn: OWN_BROKER_TURN.lock().await,
            dir: std::env::temp_dir().join(format!(
                "newsroom-cluster-{}",
                uuid::Uuid::new_v4().simple()
            )),
            port,
        };
        tokio::task::block_in_place(|| cluster.stack(&["cluster-up"]));
        cluster
    }

    fn stack(&self, args: &[&str]) {
        stack(
            args,
            &[
                ("NEWSROOM_CLUSTER_PORT", self.port.to_string()),
                ("NEWSROOM_RUN_DIR", self.dir.display().to_string()),
            ],
        );
    }

    /// Its bootstrap list (all three nodes).
    pub fn bootstrap(&self) -> String {
        (0..3)
            .map(|n| format!("127.0.0.1:{}", self.port + 2 * n))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// SIGKILLs node `node` (1-3): no shutdown, no leadership handed over.
    pub fn kill(&self, node: i32) {
        tokio::task::block_in_place(|| self.stack(&["cluster-kill", &node.to_string()]));
    }

    /// Starts node `node` again and waits until it answers.
    pub fn start_node(&self, node: i32) {
        tokio::task::block_in_place(|| self.stack(&["cluster-start", &node.to_string()]));
    }

    /// The node leading `partition` of `topic` now, as the cluster's metadata says.
    pub fn leader_of(&self, topic: &str, partition: i32) -> i32 {
        let client: BaseConsumer =
            newsroom_platform::kafka::client_config(&self.bootstrap(), "newsroom-e2e")
                .create()
                .expect("metadata client");
        let metadata = tokio::task::block_in_place(|| {
            client.fetch_metadata(Some(topic), Timeout::After(Duration::from_secs(10)))
        })
        .expect("cluster metadata");
        metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions())
            .find(|p| p.id() == partition)
            .map(|p| p.leader())
            .unwrap_or_else(|| panic!("{topic}/{partition} has no leader"))
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        self.stack(&["cluster-down"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
