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

/// Fails with a retryable error (a dependency away) until the outage ends.
struct DuringOutage {
    outage_over: Arc<std::sync::atomic::AtomicBool>,
    attempts: Arc<std::sync::atomic::AtomicU32>,
    handled: Arc<Mutex<Vec<String>>>,
}

impl Handler for DuringOutage {
    async fn handle(&self, record: &Record) -> Result<(), HandlerError> {
        use std::sync::atomic::Ordering;
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if !self.outage_over.load(Ordering::SeqCst) {
            return Err(HandlerError::retry("redis: connection refused"));
        }
        self.handled.lock().unwrap().push(record.key_str());
        Ok(())
    }
}

/// Issue 14: a dependency away for longer than the old retry budget (5 attempts, about 3 s)
/// used to dead-letter good records. Now the partition waits, the consumer reports itself not
/// ready meanwhile, and the record is handled once the dependency is back — never dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_holds_records_until_the_dependency_is_back_and_dead_letters_none() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    let pipeline = Pipeline::start_only(&[]).await;
    let raw = RawTopic::of(&pipeline).await;
    newsroom_platform::kafka::ensure_topics(
        &raw.config,
        &[newsroom_platform::kafka::topics::STORIES_RAW_DLQ],
    )
    .await
    .expect("dlq topic");
    raw.producer
        .send(&raw.topic, "flash", b"v")
        .await
        .expect("acknowledged");

    let outage_over = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU32::new(0));
    let handled = Arc::new(Mutex::new(Vec::new()));
    let handling = newsroom_platform::readiness::Check::new("handling");
    let shutdown = Shutdown::new();
    let mut settings = raw.settings();
    settings.retry_backoff = Duration::from_millis(100);
    settings.max_backoff = Duration::from_millis(500);
    let consumer = raw.consume_watched(
        settings,
        Arc::new(DuringOutage {
            outage_over: outage_over.clone(),
            attempts: attempts.clone(),
            handled: handled.clone(),
        }),
        &shutdown,
        handling.clone(),
    );

    // The outage lasts well past the old budget of 5 attempts; meanwhile the consumer says it
    // is not ready.
    eventually(Duration::from_secs(30), "the record being retried", || {
        let attempts = attempts.clone();
        async move { (attempts.load(Ordering::SeqCst) >= 2).then_some(()) }
    })
    .await;
    assert!(!handling.get(), "not ready while a record waits on Redis");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        attempts.load(Ordering::SeqCst) > 5,
        "retried past the old budget"
    );
    assert!(!handling.get(), "still not ready: the outage goes on");

    // The dependency is back: the record is handled, readiness returns, the DLQ stays empty.
    outage_over.store(true, Ordering::SeqCst);
    eventually(Duration::from_secs(10), "the record handled", || {
        let handled = handled.clone();
        async move { (handled.lock().unwrap().as_slice() == ["flash"]).then_some(()) }
    })
    .await;
    eventually(Duration::from_secs(5), "ready again", || {
        let handling = handling.clone();
        async move { handling.get().then_some(()) }
    })
    .await;
    shutdown.trigger();
    consumer
        .await
        .expect("consumer task")
        .expect("consumer ran and committed");
    assert!(
        pipeline
            .records(newsroom_platform::kafka::topics::STORIES_RAW_DLQ)
            .await
            .is_empty(),
        "an outage sent nothing to the DLQ"
    );
    pipeline.stop().await;
}
