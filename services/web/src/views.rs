//! What pages and the JSON API show, built from the services' messages: one set of types for
//! both (serialised to JSON for apps, handed to the templates for pages), so a page and an app
//! never disagree about a story.

use std::time::{SystemTime, UNIX_EPOCH};

use newsroom_proto::v1::{
    EnrichedStory, Entity, FeedItem, FollowTarget, PubStatus, Signal, StageOutcome, StageRun,
    StoryHistory, TargetKind,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An IPTC Media Topic.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Topic {
    /// "medtop:15000000"
    pub code: String,
    /// "sport"
    pub label: String,
}

/// A person, organisation or place a story names.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntityRef {
    pub name: String,
    /// person, organisation, place, event or other.
    pub kind: &'static str,
}

/// The developing story (near-duplicate cluster) a card stands for.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Developing {
    pub cluster_id: String,
    pub stories: u32,
    pub sources: u32,
}

/// A story as a feed card shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Card {
    pub id: String,
    pub version: u32,
    pub headline: String,
    pub summary: String,
    pub url: String,
    pub source: String,
    /// RFC 3339, when known.
    pub published_at: Option<String>,
    /// "5 min ago", "3 h ago", "2 Mar 2025".
    pub age: String,
    pub topics: Vec<Topic>,
    pub entities: Vec<EntityRef>,
    /// Why the reader gets it ("You follow Sport").
    pub reasons: Vec<String>,
    pub score: f64,
    pub developing: Option<Developing>,
}

/// One page of a reader's feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    pub items: Vec<Card>,
    /// Pass as `cursor` for the next page; empty at the end.
    pub next_cursor: String,
}

/// A stage's run on a story.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageRunView {
    pub name: String,
    pub outcome: &'static str,
    pub duration_us: u32,
    pub attempts: u32,
    pub error: String,
}

/// A story page.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoryView {
    pub id: String,
    pub version: u32,
    pub headline: String,
    pub standfirst: String,
    pub summary: String,
    /// Sanitised by ingest (a whitelist of tags).
    pub body_html: String,
    pub url: String,
    pub source: String,
    pub authors: Vec<String>,
    pub language: String,
    pub published_at: Option<String>,
    pub age: String,
    pub topics: Vec<Topic>,
    pub entities: Vec<EntityRef>,
    pub keywords: Vec<String>,
    pub breaking_score: f64,
    pub cluster_id: String,
    pub reading_time_seconds: u32,
    pub pipeline_id: String,
    pub stage_runs: Vec<StageRunView>,
}

/// A story's related stories: the same event first, then the nearest in meaning.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelatedList {
    pub items: Vec<Card>,
}

/// What a reader follows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Follow {
    pub kind: FollowKind,
    /// A topic code ("medtop:15000000"), an entity's name, a section, an author, a cluster id.
    #[schema(min_length = 1, max_length = 256)]
    pub value: String,
}

/// What can be followed: a developing story is its near-duplicate cluster.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FollowKind {
    Topic,
    Entity,
    Section,
    Author,
    Cluster,
}

impl FollowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FollowKind::Topic => "topic",
            FollowKind::Entity => "entity",
            FollowKind::Section => "section",
            FollowKind::Author => "author",
            FollowKind::Cluster => "cluster",
        }
    }

    fn of(kind: i32) -> Option<Self> {
        Some(match TargetKind::try_from(kind).ok()? {
            TargetKind::Topic => FollowKind::Topic,
            TargetKind::Entity => FollowKind::Entity,
            TargetKind::Section => FollowKind::Section,
            TargetKind::Author => FollowKind::Author,
            TargetKind::Cluster => FollowKind::Cluster,
            TargetKind::Unspecified => return None,
        })
    }
}

/// A reader's follows.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub follows: Vec<Follow>,
}

pub fn target_kind(kind: &str) -> Option<TargetKind> {
    Some(match kind {
        "topic" => TargetKind::Topic,
        "entity" => TargetKind::Entity,
        "section" => TargetKind::Section,
        "author" => TargetKind::Author,
        "cluster" => TargetKind::Cluster,
        _ => return None,
    })
}

pub fn profile(follows: &[FollowTarget]) -> Profile {
    Profile {
        follows: follows
            .iter()
            .filter_map(|f| {
                Some(Follow {
                    kind: FollowKind::of(f.kind)?,
                    value: f.value.clone(),
                })
            })
            .collect(),
    }
}

fn entities(list: &[Entity]) -> Vec<EntityRef> {
    list.iter()
        .map(|e| EntityRef {
            name: e.name.clone(),
            kind: newsroom_proto::entity_kind_name(e.kind),
        })
        .collect()
}

fn topics(list: &[newsroom_proto::v1::TopicScore]) -> Vec<Topic> {
    list.iter()
        .map(|t| Topic {
            code: t.code.clone(),
            label: if t.label.is_empty() {
                newsroom_proto::media_topics::label(&t.code)
                    .unwrap_or(&t.code)
                    .to_owned()
            } else {
                t.label.clone()
            },
        })
        .collect()
}

fn rfc3339(t: Option<&prost_types::Timestamp>) -> Option<(String, i64)> {
    let t = t?;
    let at = chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)?;
    Some((
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        t.seconds,
    ))
}

/// "just now", "5 min ago", "3 h ago", "2 days ago", else the date.
pub fn age(seconds: i64, now: i64) -> String {
    let d = (now - seconds).max(0);
    match d {
        0..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", d / 60),
        3600..86_400 => format!("{} h ago", d / 3600),
        86_400..604_800 => format!("{} days ago", d / 86_400),
        _ => chrono::DateTime::from_timestamp(seconds, 0)
            .map(|t| t.format("%-d %b %Y").to_string())
            .unwrap_or_default(),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn card(item: &FeedItem) -> Option<Card> {
    let s = item.story.as_ref()?;
    let published = rfc3339(s.published_at.as_ref());
    Some(Card {
        id: s.id.clone(),
        version: s.version,
        headline: s.headline.clone(),
        summary: if item.summary.is_empty() {
            s.standfirst.clone()
        } else {
            item.summary.clone()
        },
        url: s.url.clone(),
        source: s.source.clone(),
        age: published
            .as_ref()
            .map(|(_, secs)| age(*secs, now()))
            .unwrap_or_default(),
        published_at: published.map(|(t, _)| t),
        topics: topics(&item.topics),
        entities: entities(&item.entities),
        reasons: item.reasons.clone(),
        score: item.score,
        developing: item.developing.as_ref().map(|d| Developing {
            cluster_id: d.cluster_id.clone(),
            stories: d.stories,
            sources: d.sources,
        }),
    })
}

pub fn story(e: &EnrichedStory) -> Option<StoryView> {
    let s = e.story.as_ref()?;
    let en = e.enrichment.clone().unwrap_or_default();
    let published = rfc3339(s.published_at.as_ref());
    Some(StoryView {
        id: s.id.clone(),
        version: s.version,
        headline: s.headline.clone(),
        standfirst: s.standfirst.clone(),
        summary: en.summary.clone(),
        body_html: s.body_html.clone(),
        url: s.url.clone(),
        source: s.source.clone(),
        authors: s.authors.clone(),
        language: if en.language.is_empty() {
            s.language.clone()
        } else {
            en.language.clone()
        },
        age: published
            .as_ref()
            .map(|(_, secs)| age(*secs, now()))
            .unwrap_or_default(),
        published_at: published.map(|(t, _)| t),
        topics: topics(&en.topics),
        entities: entities(&en.entities),
        keywords: en.keywords.clone(),
        breaking_score: en.breaking_score,
        cluster_id: en.cluster_id.clone(),
        reading_time_seconds: en.reading_time_seconds,
        pipeline_id: en.pipeline_id.clone(),
        stage_runs: stage_runs(&en.stage_runs),
    })
}

fn stage_runs(runs: &[StageRun]) -> Vec<StageRunView> {
    runs.iter()
        .map(|r| StageRunView {
            name: r.name.clone(),
            outcome: match StageOutcome::try_from(r.outcome) {
                Ok(StageOutcome::Ok) => "ok",
                Ok(StageOutcome::Skipped) => "skipped",
                Ok(StageOutcome::Disabled) => "disabled",
                Ok(StageOutcome::Reused) => "reused",
                _ => "unknown",
            },
            duration_us: r.duration_us,
            attempts: r.attempts,
            error: r.error.clone(),
        })
        .collect()
}

/// A version of a story on the editor's desk.
#[derive(Debug, Serialize)]
pub struct VersionView {
    pub version: u32,
    pub headline: String,
    /// "new", "update", "correction", "killed" or "withheld".
    pub kind: &'static str,
    pub accepted_at: Option<String>,
    pub pipeline_id: String,
    /// Where its trace opens (`NEWSROOM_WEB_TRACE_URL`), when it travelled in one.
    pub trace_url: Option<String>,
    pub stage_runs: Vec<StageRunView>,
}

/// A story's versions, newest first, with links to their traces through `trace_url`
/// (`{trace_id}` replaced).
pub fn versions(history: &StoryHistory, trace_url: &str) -> Vec<VersionView> {
    history
        .versions
        .iter()
        .map(|v| VersionView {
            version: v.version,
            headline: v.headline.clone(),
            kind: match (PubStatus::try_from(v.pubstatus), Signal::try_from(v.signal)) {
                (Ok(PubStatus::Canceled), _) => "killed",
                (Ok(PubStatus::Withheld), _) => "withheld",
                (_, Ok(Signal::Correction)) => "correction",
                _ if v.version <= 1 => "new",
                _ => "update",
            },
            accepted_at: rfc3339(v.accepted_at.as_ref()).map(|(t, _)| t),
            pipeline_id: v.pipeline_id.clone(),
            trace_url: (!v.trace_id.is_empty())
                .then(|| trace_url.replace("{trace_id}", &v.trace_id)),
            stage_runs: stage_runs(&v.stage_runs),
        })
        .collect()
}

/// The templates, compiled once per process (at start: a broken template stops the service
/// there), shared by every page and the error page.
pub fn templates() -> Result<&'static minijinja::Environment<'static>, String> {
    static TEMPLATES: std::sync::LazyLock<Result<minijinja::Environment<'static>, String>> =
        std::sync::LazyLock::new(|| compile().map_err(|e| e.to_string()));
    TEMPLATES.as_ref().map_err(Clone::clone)
}

fn compile() -> Result<minijinja::Environment<'static>, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    macro_rules! add {
        ($($name:literal),*) => {
            $(env.add_template($name, include_str!(concat!("../templates/", $name)))?;)*
        };
    }
    add!(
        "base.html",
        "signin.html",
        "feed.html",
        "_cards.html",
        "_chip.html",
        "story.html",
        "preferences.html",
        "console.html",
        "_wire.html",
        "_alert.html",
        "approve.html",
        "dead_letters.html",
        "error.html"
    );
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_a_news_site() {
        let now = 1_700_000_000;
        assert_eq!(age(now - 5, now), "just now");
        assert_eq!(age(now - 300, now), "5 min ago");
        assert_eq!(age(now - 3 * 3600, now), "3 h ago");
        assert_eq!(age(now - 2 * 86_400, now), "2 days ago");
        assert_eq!(age(1_600_000_000, now), "13 Sep 2020");
    }

    #[test]
    fn every_template_compiles() {
        templates().expect("templates");
    }
}
