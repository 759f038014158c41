//! The platform's Redis layer against a real Redis Cluster (three masters on 127.0.0.1:7001-7003,
//! `deploy/stack.sh redis-cluster-up`; `NEWSROOM_REDIS_CLUSTER_URL` names another): what every
//! service relies on when `REDIS_URL` lists a cluster's nodes. The services' own suites run
//! against the cluster in `just test-redis-cluster`.

use std::collections::HashSet;

use newsroom_platform::redis::redis::{self, AsyncCommands as _};
use newsroom_platform::redis::{Rebuild, RedisStore, tag};

fn cluster_url() -> String {
    std::env::var("NEWSROOM_REDIS_CLUSTER_URL").unwrap_or_else(|_| {
        "redis://127.0.0.1:7001,redis://127.0.0.1:7002,redis://127.0.0.1:7003".into()
    })
}

async fn cluster(test: &str) -> RedisStore {
    let prefix = format!("test:cluster:{test}:{}:", uuid::Uuid::new_v4().simple());
    let store = RedisStore::connect(&cluster_url(), &prefix)
        .await
        .expect("a Redis Cluster on 127.0.0.1:7001-7003: `deploy/stack.sh redis-cluster-up`");
    assert!(store.is_cluster());
    store
}

/// The master (`host:port`) that holds `key`.
async fn master_of(store: &RedisStore, key: &str) -> String {
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut store.conn())
        .await
        .unwrap();
    let shards: Vec<(i64, i64, (String, i64))> = {
        let raw: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut store.conn())
            .await
            .unwrap();
        raw.into_iter()
            .map(|v| {
                let r: Vec<redis::Value> = redis::FromRedisValue::from_redis_value(v).unwrap();
                let lo: i64 = redis::FromRedisValue::from_redis_value(r[0].clone()).unwrap();
                let hi: i64 = redis::FromRedisValue::from_redis_value(r[1].clone()).unwrap();
                let node: Vec<redis::Value> =
                    redis::FromRedisValue::from_redis_value(r[2].clone()).unwrap();
                let host: String =
                    redis::FromRedisValue::from_redis_value(node[0].clone()).unwrap();
                let port: i64 = redis::FromRedisValue::from_redis_value(node[1].clone()).unwrap();
                (lo, hi, (host, port))
            })
            .collect()
    };
    let (_, _, (host, port)) = shards
        .into_iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&slot))
        .expect("every slot is served");
    format!("{host}:{port}")
}

#[tokio::test]
async fn a_pipeline_over_keys_on_every_master_answers_in_the_order_asked() {
    let store = cluster("pipeline").await;
    let keys: Vec<String> = (0..60).map(|i| store.key(format!("reader:{i}"))).collect();
    let mut masters = HashSet::new();
    for k in &keys {
        masters.insert(master_of(&store, k).await);
    }
    assert_eq!(masters.len(), 3, "the keys spread over the three masters");

    let mut pipe = redis::pipe();
    for (i, k) in keys.iter().enumerate() {
        pipe.set(k, i).ignore();
    }
    // A keyless command and a many-key one in the middle, reads after the writes.
    pipe.cmd("PING");
    pipe.exists(&keys[..10]);
    for k in &keys {
        pipe.incr(k, 1000);
    }
    let answers: (String, usize, Vec<usize>) = {
        let raw: Vec<redis::Value> = pipe.query_async(&mut store.conn()).await.unwrap();
        let pong: String = redis::FromRedisValue::from_redis_value(raw[0].clone()).unwrap();
        let exist: usize = redis::FromRedisValue::from_redis_value(raw[1].clone()).unwrap();
        let counts = raw[2..]
            .iter()
            .map(|v| redis::FromRedisValue::from_redis_value(v.clone()).unwrap())
            .collect();
        (pong, exist, counts)
    };
    assert_eq!(answers.0, "PONG");
    assert_eq!(answers.1, 10, "EXISTS over ten keys on several masters");
    assert_eq!(
        answers.2,
        (0..60).map(|i| i + 1000).collect::<Vec<_>>(),
        "each reply is the one of its own command, in the pipeline's order"
    );
    // A pipeline of one command over several slots.
    let mut one = redis::pipe();
    one.exists(&keys);
    let (all,): (usize,) = one.query_async(&mut store.conn()).await.unwrap();
    assert_eq!(all, 60);
    assert_eq!(
        store
            .delete_matching(&format!("{}*", store.prefix()))
            .await
            .unwrap(),
        60
    );
}

#[tokio::test]
async fn tagged_keys_share_a_slot_so_a_multi_and_a_script_may_change_them_together() {
    let store = cluster("tagged").await;
    let follows = store.key(format!("rec:follows:{}", tag("alice")));
    let generation = store.key(format!("rec:gen:{}", tag("alice")));
    assert_eq!(
        master_of(&store, &follows).await,
        master_of(&store, &generation).await
    );
    let _: () = redis::pipe()
        .atomic()
        .sadd(&follows, "topic:sport")
        .set(&generation, "g1")
        .query_async(&mut store.conn())
        .await
        .unwrap();
    let moved: i32 = redis::Script::new(
        "redis.call('SREM', KEYS[1], ARGV[1]) redis.call('SET', KEYS[2], ARGV[2]) return 1",
    )
    .key(&follows)
    .key(&generation)
    .arg("topic:sport")
    .arg("g2")
    .invoke_async(&mut store.conn())
    .await
    .unwrap();
    assert_eq!(moved, 1);
    let g: String = store.conn().get(&generation).await.unwrap();
    assert_eq!(g, "g2");

    // Untagged keys on two masters: a MULTI over them is refused, loudly, not half applied.
    let a = store.key("a");
    let mut far = None;
    for i in 0..100 {
        let k = store.key(format!("b{i}"));
        if master_of(&store, &k).await != master_of(&store, &a).await {
            far = Some(k);
            break;
        }
    }
    let far = far.expect("a key on another master");
    let refused = redis::pipe()
        .atomic()
        .set(&a, 1)
        .set(&far, 1)
        .query_async::<()>(&mut store.conn())
        .await;
    assert!(refused.is_err(), "a MULTI across slots must fail");
    store
        .delete_matching(&format!("{}*", store.prefix()))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rebuild_marker_and_its_sentinel_share_a_slot_tagged_or_not() {
    let store = cluster("rebuild").await;
    for marker in ["svc:loaded", "svc:{state}:loaded"] {
        let rebuild = Rebuild::begin(&store, marker).await.unwrap();
        assert!(rebuild.finish().await.unwrap(), "{marker}");
        let present: bool = store.conn().exists(store.key(marker)).await.unwrap();
        assert!(present, "{marker}");
    }
    // The policy of every master, and all keys gone from all of them.
    assert_eq!(store.eviction_policy().await.as_deref(), Some("noeviction"));
    assert!(
        store
            .delete_matching(&format!("{}*", store.prefix()))
            .await
            .unwrap()
            >= 2
    );
    let left: bool = store.conn().exists(store.key("svc:loaded")).await.unwrap();
    assert!(!left);
}

#[tokio::test]
async fn pub_sub_reaches_a_subscriber_whichever_node_the_publish_went_to() {
    use futures::StreamExt as _;
    let store = cluster("pubsub").await;
    let mut pubsub = store.pubsub().await.unwrap();
    let mut channels = Vec::new();
    for i in 0..12 {
        let c = store.key(format!("in-app:user-{i}"));
        pubsub.subscribe(&c).await.unwrap();
        channels.push(c);
    }
    for c in &channels {
        let _: i64 = store.conn().publish(c, "alert").await.unwrap();
    }
    let mut stream = pubsub.on_message();
    let mut heard = HashSet::new();
    while heard.len() < channels.len() {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
            .await
            .expect("every channel's message within 5 s")
            .unwrap();
        heard.insert(msg.get_channel_name().to_owned());
    }
    assert_eq!(heard.len(), 12);
}
