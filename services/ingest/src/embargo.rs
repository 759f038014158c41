//! Embargoed stories: held until `embargo_until`, then released exactly once.
//!
//! An embargoed version is written to the compacted `stories.held` topic (keyed by story id)
//! instead of `stories.raw`. Every ingest replica runs an [`Embargo`] task that reads
//! `stories.held` from the beginning on start (so no embargo is forgotten across restarts),
//! keeps the waiting stories in memory ordered by release time, and when one is due hands it to
//! [`Submitter::release`], which:
//! 1. leases the release in Redis (`SET NX PX ingest:releasing:<id>:<version>`, 30 s), so that
//!    of several replicas one writes it; a replica that finds it `ingest:released` goes to 3;
//! 2. unless a newer version of the story was acknowledged meanwhile (an update or a kill
//!    supersedes what was held), writes it to `stories.raw`, and only once Kafka acknowledged
//!    it marks it `ingest:released`;
//! 3. writes a tombstone for it on `stories.held`.
//!
//! Nothing is claimed before it is durable: a write that fails (the broker down across the
//! release time) or a crash leaves the hold and at most a lease that expires, and the release
//! is tried again until it lands. A crash between 2 and 3 leaves the held record; the next
//! attempt finds it released and writes only the tombstone. Downstream is idempotent on
//! (id, version) in any case.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use newsroom_platform::PlatformConfig;
use newsroom_platform::kafka;
use newsroom_platform::kafka::rdkafka::message::Message as _;
use newsroom_platform::shutdown::Shutdown;
use newsroom_proto::Message as _;
use newsroom_proto::v1::StoryEvent;

use crate::story::now_ms;
use crate::submit::Submitter;

/// Stories waiting for release, by time and by id.
#[derive(Default)]
struct Waiting {
    by_time: BTreeMap<(i64, String), StoryEvent>,
    by_id: HashMap<String, i64>,
}

impl Waiting {
    fn hold(&mut self, id: String, at: i64, event: StoryEvent) {
        self.forget(&id);
        self.by_id.insert(id.clone(), at);
        self.by_time.insert((at, id), event);
    }

    fn forget(&mut self, id: &str) {
        if let Some(at) = self.by_id.remove(id) {
            self.by_time.remove(&(at, id.to_owned()));
        }
    }

    fn next_due(&mut self, now: i64) -> Option<(String, StoryEvent)> {
        let (&(at, ref id), _) = self.by_time.iter().next()?;
        if at > now {
            return None;
        }
        let id = id.clone();
        let event = self.by_time.remove(&(at, id.clone()))?;
        self.by_id.remove(&id);
        Some((id, event))
    }
}

/// The release task of one replica.
pub struct Embargo {
    pub config: PlatformConfig,
    pub held_topic: String,
    /// Releases what is due ([`Submitter::release`]): claim, supersession check, write.
    pub submitter: Submitter,
}

impl Embargo {
    /// Runs until shutdown.
    pub async fn run(
        self,
        shutdown: Shutdown,
    ) -> Result<(), newsroom_platform::kafka::rdkafka::error::KafkaError> {
        // Outside any group, never committed: every start reads the whole topic, and no
        // consumer group is left behind in Kafka per start.
        let consumer = kafka::follow_from_start(&self.config, &self.held_topic).await?;
        let mut waiting = Waiting::default();
        let errors = newsroom_platform::kafka::ErrorLog::new("stories.held consumer error");
        loop {
            let sleep = match waiting.by_time.keys().next() {
                Some((at, _)) => Duration::from_millis((*at - now_ms()).clamp(0, 1000) as u64),
                None => Duration::from_secs(1),
            };
            tokio::select! {
                biased;
                _ = shutdown.requested() => break,
                m = consumer.recv() => match m {
                    Ok(m) => {
                        let id = m.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
                        match m.payload().map(StoryEvent::decode) {
                            None => waiting.forget(&id),
                            Some(Ok(event)) => {
                                let at = event.story.as_ref().and_then(crate::story::embargo_until_ms).unwrap_or(0);
                                waiting.hold(id, at, event);
                            }
                            Some(Err(e)) => tracing::error!(story.id = %id, error = %e, "undecodable record on stories.held, ignored"),
                        }
                    }
                    Err(e) => {
                        errors.warn(&e, "embargo reader");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                _ = tokio::time::sleep(sleep) => {}
            }
            while let Some((id, event)) = waiting.next_due(now_ms()) {
                match self.submitter.release(&id, &event).await {
                    Ok(None) => {}
                    // Another replica is releasing it: its tombstone will make us forget it;
                    // if that replica died, we release it once its lease expired.
                    Ok(Some(later)) => {
                        waiting.hold(id, now_ms() + later.as_millis() as i64, event);
                    }
                    Err(e) => {
                        tracing::warn!(story.id = %id, error = %e, "release failed, retrying shortly");
                        // Put it back a second later; nothing is lost.
                        waiting.hold(id, now_ms() + 1000, event);
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_due_story_comes_first_and_a_newer_hold_replaces() {
        let mut w = Waiting::default();
        w.hold("a".into(), 200, StoryEvent::default());
        w.hold("b".into(), 100, StoryEvent::default());
        w.hold("a".into(), 300, StoryEvent::default());
        assert!(w.next_due(50).is_none());
        assert_eq!(w.next_due(250).unwrap().0, "b");
        assert!(w.next_due(250).is_none());
        assert_eq!(w.next_due(300).unwrap().0, "a");
        w.hold("c".into(), 10, StoryEvent::default());
        w.forget("c");
        assert!(w.next_due(1000).is_none());
    }
}
