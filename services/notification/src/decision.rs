//! Which stories alert, and what the alert says.
//!
//! A story alerts by itself when it is usable, fresh (accepted less than
//! `NEWSROOM_ALERT_MAX_AGE_S` ago, so a consumer replaying `stories.enriched` never pushes old
//! flashes) and either urgent (IPTC urgency 1..=`NEWSROOM_ALERT_MAX_URGENCY`) or, when
//! `NEWSROOM_ALERT_BREAKING_SCORE` is set, scored at least that by enrichment. An editor can
//! alert any usable story (`SendAlert`). A killed story never alerts.
//!
//! Alerts run in two [`Lane`]s, so that a flash never waits behind a routine fan-out.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use newsroom_proto::v1::{Alert, EnrichedStory, PubStatus, Signal};

use crate::audience::Segment;
use crate::preferences::StoryFacts;

/// Where an alert runs. Breaking alerts — the stories that alert by themselves, and editors'
/// alerts that are critical or of a breaking story — are read from `stories.enriched` and
/// `notifications.alerts.breaking` by one consumer group; routine ones (an editor's alert of a
/// routine story) from `notifications.alerts` by another, so a routine fan-out to everyone
/// never delays a flash's consumer; and routine fan-outs together hold at most part of each
/// channel's concurrency ([`crate::channel::routine_share`]), so a flash's sends never queue
/// behind theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Breaking,
    Routine,
}

impl Lane {
    /// Breaking when `breaking`, else routine.
    pub fn of(breaking: bool) -> Lane {
        if breaking {
            Lane::Breaking
        } else {
            Lane::Routine
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Lane::Breaking => "breaking",
            Lane::Routine => "routine",
        }
    }
}

/// The editorial rules of this server: what alerts by itself, how old is too old, the
/// configured segments and the canary's user. Shared by the consumers and `SendAlert`.
#[derive(Debug, Clone)]
pub struct Rules {
    /// A story alerts when its urgency is 1..=this.
    pub max_urgency: u32,
    /// Or when enrichment scored it at least this.
    pub breaking_score: Option<f64>,
    /// Older stories never alert by themselves; older editor requests are never started.
    pub max_age: Duration,
    pub segments: BTreeMap<String, Segment>,
    pub canary_user: String,
}

impl Rules {
    /// Whether `enriched` is urgent enough to alert by itself (not counting its age).
    pub fn is_breaking(&self, enriched: &EnrichedStory) -> bool {
        is_breaking(enriched, self.max_urgency, self.breaking_score)
    }

    /// The lane of an editor's alert of `enriched`.
    pub fn editor_lane(&self, enriched: &EnrichedStory, critical: bool) -> Lane {
        Lane::of(critical || self.is_breaking(enriched))
    }
}

/// The alert a story sends. Its collapse id is the story id: every version and correction of
/// a story replaces the same notification on the device.
pub fn alert_of(enriched: &EnrichedStory) -> Option<Alert> {
    let story = enriched.story.as_ref()?;
    if story.id.is_empty() {
        return None;
    }
    Some(Alert {
        story_id: story.id.clone(),
        version: story.version,
        headline: story.headline.clone(),
        url: story.url.clone(),
        urgency: story.urgency,
        topics: enriched
            .enrichment
            .as_ref()
            .map(|e| e.topics.iter().map(|t| t.code.clone()).collect())
            .unwrap_or_default(),
        sent_at: None,
        correction: false,
        retracted: false,
        critical: false,
        collapse_id: story.id.clone(),
        event_id: event_id_of(enriched),
        briefing: Vec::new(),
    })
}

/// The news event of a story (its near-duplicate cluster, its own when enrichment found none),
/// for one alert per event and device; an editor's alert escalates.
pub fn event_of(enriched: &EnrichedStory, escalate: bool) -> Option<crate::store::EventClaim> {
    let story = enriched.story.as_ref()?;
    let cluster = event_id_of(enriched);
    (!cluster.is_empty()).then_some(crate::store::EventClaim {
        cluster,
        urgency: story.urgency,
        escalate,
    })
}

/// The story's near-duplicate cluster, or its own (`c-<id>`) when enrichment gave none; empty
/// for a canary, which is an event of its own every time.
fn event_id_of(enriched: &EnrichedStory) -> String {
    let Some(story) = enriched.story.as_ref() else {
        return String::new();
    };
    if story.canary {
        return String::new();
    }
    enriched
        .enrichment
        .as_ref()
        .map(|e| e.cluster_id.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| format!("c-{}", story.id))
}

/// What the per-device filters need to know about a story.
pub fn facts_of(enriched: &EnrichedStory) -> StoryFacts {
    let e = enriched.enrichment.clone().unwrap_or_default();
    let story_lang = enriched
        .story
        .as_ref()
        .map(|s| s.language.clone())
        .unwrap_or_default();
    let language = [e.language.clone(), story_lang]
        .into_iter()
        .find(|l| !l.is_empty());
    StoryFacts {
        topics: e.topics.iter().map(|t| t.code.clone()).collect(),
        entities: e.entities.iter().map(|x| x.name.to_lowercase()).collect(),
        language,
        cluster: Some(e.cluster_id.trim().to_owned()).filter(|c| !c.is_empty()),
    }
}

pub fn is_killed(enriched: &EnrichedStory) -> bool {
    enriched
        .story
        .as_ref()
        .is_some_and(|s| s.pubstatus == PubStatus::Canceled as i32)
}

pub fn is_correction(enriched: &EnrichedStory) -> bool {
    enriched
        .story
        .as_ref()
        .is_some_and(|s| s.signal == Signal::Correction as i32)
}

/// Whether a story is usable (not withheld or killed).
pub fn is_usable(enriched: &EnrichedStory) -> bool {
    enriched.story.as_ref().is_some_and(|s| {
        s.pubstatus != PubStatus::Canceled as i32 && s.pubstatus != PubStatus::Withheld as i32
    })
}

/// Whether a story alerts by itself (urgency 0 = not given).
pub fn is_breaking(enriched: &EnrichedStory, max_urgency: u32, min_score: Option<f64>) -> bool {
    let urgent = enriched
        .story
        .as_ref()
        .is_some_and(|s| (1..=max_urgency).contains(&s.urgency));
    let scored = min_score.is_some_and(|min| {
        enriched
            .enrichment
            .as_ref()
            .is_some_and(|e| e.breaking_score >= min)
    });
    is_usable(enriched) && (urgent || scored)
}

/// When ingest accepted the story (else when it was published or updated), if known.
pub fn accepted_at(enriched: &EnrichedStory) -> Option<SystemTime> {
    let story = enriched.story.as_ref();
    [
        enriched.accepted_at,
        story.and_then(|s| s.updated_at),
        story.and_then(|s| s.published_at),
    ]
    .into_iter()
    .flatten()
    .find_map(|t| SystemTime::try_from(t).ok())
}

/// Whether a story is recent enough to alert by itself (unknown age counts as fresh).
pub fn is_fresh(enriched: &EnrichedStory, max_age: Duration, now: SystemTime) -> bool {
    accepted_at(enriched)
        .and_then(|at| now.duration_since(at).ok())
        .is_none_or(|age| age <= max_age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use newsroom_proto::v1::{Enrichment, Story};

    fn story(urgency: u32, score: f64) -> EnrichedStory {
        EnrichedStory {
            story: Some(Story {
                id: "s1".into(),
                urgency,
                ..Default::default()
            }),
            enrichment: Some(Enrichment {
                breaking_score: score,
                ..Default::default()
            }),
            accepted_at: Some(SystemTime::now().into()),
        }
    }

    #[test]
    fn urgency_or_a_configured_score_makes_a_story_breaking() {
        assert!(is_breaking(&story(1, 0.0), 2, None));
        assert!(is_breaking(&story(2, 0.0), 2, None));
        assert!(!is_breaking(&story(3, 0.9), 2, None));
        assert!(is_breaking(&story(3, 0.9), 2, Some(0.8)));
        assert!(!is_breaking(&story(0, 0.1), 2, Some(0.8)));
        let mut killed = story(1, 1.0);
        killed.story.as_mut().unwrap().pubstatus = PubStatus::Canceled as i32;
        assert!(!is_breaking(&killed, 2, Some(0.5)));
        assert!(is_killed(&killed));
    }

    #[test]
    fn an_old_story_is_not_fresh() {
        let s = story(1, 0.0);
        let now = SystemTime::now();
        assert!(is_fresh(&s, Duration::from_secs(60), now));
        assert!(!is_fresh(
            &s,
            Duration::from_secs(60),
            now + Duration::from_secs(120)
        ));
        let unknown = EnrichedStory {
            accepted_at: None,
            ..s
        };
        assert!(is_fresh(
            &unknown,
            Duration::from_secs(60),
            now + Duration::from_secs(120)
        ));
    }

    #[test]
    fn critical_or_breaking_editor_alerts_take_the_breaking_lane() {
        let rules = Rules {
            max_urgency: 2,
            breaking_score: None,
            max_age: Duration::from_secs(3600),
            segments: BTreeMap::new(),
            canary_user: "canary".into(),
        };
        assert_eq!(rules.editor_lane(&story(1, 0.0), false), Lane::Breaking);
        assert_eq!(rules.editor_lane(&story(5, 0.0), true), Lane::Breaking);
        assert_eq!(rules.editor_lane(&story(5, 0.0), false), Lane::Routine);
        assert_eq!(rules.editor_lane(&story(0, 0.0), false), Lane::Routine);
    }

    #[test]
    fn the_collapse_id_is_the_story_id() {
        let a = alert_of(&story(1, 0.0)).unwrap();
        assert_eq!(a.collapse_id, "s1");
    }
}
