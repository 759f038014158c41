//! The platform's consumer against the real broker: a task per assigned partition, so a record
//! that takes long holds back its own partition only, and what was handled is committed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use newsroom_e2e::{Pipeline, RawTopic, eventually};
use newsroom_platform::kafka::{Handler, HandlerError, Record};
use newsroom_platform::shutdown::Shutdown;
use tokio::sync::Notify;

/// Handles every record at once, except the one keyed `stuck`, which waits to be released.
struct HeldBack {
    release: Arc<Notify>,
    handled: Arc<Mutex<Vec<String>>>,
}

impl Handler for HeldBack {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        if record.key_str() == "stuck" {
            self.release.notified().await;
        }
        self.handled.lock().unwrap().push(record.key_str());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_takes_long_holds_back_only_its_own_partition() {
    let pipeline = Pipeline::start_only(&[]).await;
    let raw = RawTopic::of(&pipeline).await;
    let (producer, topic) = (&raw.producer, &raw.topic);

    // The stuck record first, then stories on every other partition.
    let stuck = producer
        .send(topic, "stuck", b"v")
        .await
        .expect("acknowledged");
    let mut others = Vec::new();
    for n in 0..30 {
        let key = format!("story-{n}");
        let d = producer
            .send(topic, &key, b"v")
            .await
            .expect("acknowledged");
        if d.partition != stuck.partition {
            others.push(key);
        }
    }
    assert!(!others.is_empty(), "no story landed beside the stuck one");

    let release = Arc::new(Notify::new());
    let handled = Arc::new(Mutex::new(Vec::new()));
    let shutdown = Shutdown::new();
    let consumer = raw.consume(
        raw.settings(),
        Arc::new(HeldBack {
            release: release.clone(),
            handled: handled.clone(),
        }),
        &shutdown,
    );

    // Every story of the other partitions is handled while the stuck one still waits.
    eventually(
        Duration::from_secs(30),
        "the other partitions' stories, past the stuck record",
        || {
            let (handled, others) = (handled.clone(), others.clone());
            async move {
                let seen: HashSet<String> = handled.lock().unwrap().iter().cloned().collect();
                others.iter().all(|k| seen.contains(k)).then_some(())
            }
        },
    )
    .await;
    assert!(
        !handled.lock().unwrap().contains(&"stuck".to_owned()),
        "the stuck record is still being handled"
    );

    // Released, it is handled, then the stories behind it on its own partition, in order.
    release.notify_one();
    eventually(Duration::from_secs(30), "every record handled", || {
        let handled = handled.clone();
        async move { (handled.lock().unwrap().len() >= 31).then_some(()) }
    })
    .await;
    let handled = handled.lock().unwrap().clone();
    let stuck_at = handled.iter().position(|k| k == "stuck").unwrap();
    assert!(
        stuck_at > 0,
        "other partitions went first while it was held: {handled:?}"
    );
    shutdown.trigger();
    consumer
        .await
        .expect("consumer task")
        .expect("consumer ran and committed");
    pipeline.stop().await;
}
