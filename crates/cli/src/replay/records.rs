//! What a record of a story topic is to a replay: which topics carry stories ([`replayable`]),
//! the `StoryEvent` a record stands for ([`story_event`]), and the headers it is written back
//! with ([`headers`]).

use newsroom_platform::kafka::rdkafka::message::{
    BorrowedHeaders, Header, Headers as _, OwnedHeaders,
};
use newsroom_platform::kafka::{replay_headers, topics};
use newsroom_proto::Message as _;
use newsroom_proto::v1::{EnrichedStory, StoryEvent};

/// How the records of a source topic become a `StoryEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carries {
    StoryEvent,
    EnrichedStory,
}

/// The prefix and the kind of record of a topic a replay may read; `None` for the others.
pub(super) fn replayable(topic: &str) -> Option<(&str, Carries)> {
    [
        (topics::STORIES_RAW_DLQ, Carries::StoryEvent),
        (topics::STORIES_RAW, Carries::StoryEvent),
        (topics::STORIES_ENRICHED_DLQ, Carries::EnrichedStory),
        (topics::STORIES_ENRICHED, Carries::EnrichedStory),
    ]
    .into_iter()
    .find_map(|(base, carries)| {
        let prefix = topic.strip_suffix(base)?;
        (prefix.is_empty() || prefix.ends_with('.')).then_some((prefix, carries))
    })
}

/// The story event a record stands for, if it is a story.
pub(super) fn story_event(carries: Carries, payload: &[u8]) -> Option<StoryEvent> {
    let event = match carries {
        Carries::StoryEvent => StoryEvent::decode(payload).ok()?,
        Carries::EnrichedStory => {
            let e = EnrichedStory::decode(payload).ok()?;
            StoryEvent {
                story: e.story,
                fingerprint: String::new(),
                accepted_at: e.accepted_at,
            }
        }
    };
    event
        .story
        .as_ref()
        .is_some_and(|s| !s.id.is_empty())
        .then_some(event)
}

/// The headers a replayed record is written with: the original's (the trace context too, so
/// the re-run shows up in the story version's trace) minus the dead-letter verdict and an
/// earlier replay's marks, plus `newsroom.replay: cli` and `newsroom.replay.source: source`
/// (`topic/partition/offset` of the record read).
pub(super) fn headers(original: Option<&BorrowedHeaders>, source: &str) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = original {
        for h in original.iter() {
            // The dead-letter verdict and an earlier replay's marks belong to that record.
            let stale = h.key.starts_with("dlq.") || h.key.starts_with("newsroom.replay");
            if !stale {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
    }
    headers
        .insert(Header {
            key: replay_headers::REPLAY,
            value: Some("cli"),
        })
        .insert(Header {
            key: replay_headers::SOURCE,
            value: Some(source),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use newsroom_proto::v1::Story;

    #[test]
    fn only_the_story_topics_can_be_replayed_whatever_the_prefix() {
        assert_eq!(
            replayable("stories.raw.dlq"),
            Some(("", Carries::StoryEvent))
        );
        assert_eq!(
            replayable("t1.stories.enriched"),
            Some(("t1.", Carries::EnrichedStory))
        );
        assert_eq!(
            replayable("t1.stories.enriched.dlq"),
            Some(("t1.", Carries::EnrichedStory))
        );
        assert_eq!(replayable("stories.held"), None);
        assert_eq!(replayable("t1.profiles"), None);
        assert_eq!(replayable("xstories.raw"), None);
    }

    #[test]
    fn an_enriched_story_goes_back_as_the_event_it_came_from() {
        let accepted_at = Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        });
        let enriched = EnrichedStory {
            story: Some(Story {
                id: "s1".into(),
                version: 3,
                headline: "Markets rally".into(),
                ..Default::default()
            }),
            enrichment: Some(Default::default()),
            accepted_at,
        };
        let event = story_event(Carries::EnrichedStory, &enriched.encode_to_vec()).unwrap();
        assert_eq!(event.story.as_ref().unwrap().version, 3);
        assert_eq!(event.accepted_at, accepted_at);
        // Not a story: nothing to replay.
        assert!(story_event(Carries::StoryEvent, b"\xff\xfe").is_none());
        assert!(story_event(Carries::StoryEvent, &StoryEvent::default().encode_to_vec()).is_none());
    }
}
