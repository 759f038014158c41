//! Who an alert is for, read from Redis a page at a time.
//!
//! An audience is a list of Redis sets: of users (the followers of a topic or entity, whose
//! devices are looked up page by page) or of devices (those whose preferences chose a topic or
//! entity; every device, for `everyone` and segments). [`AudienceCursor`] walks them with
//! `SSCAN`, so a fan-out to millions holds one page in memory, never the audience. A device
//! reached through several sets comes up more than once; the ledger claim (`store::claim`)
//! lets only the first through.

use newsroom_proto::v1::Device;
use serde::Deserialize;

use crate::channel;
use crate::preferences::StoryFacts;
use crate::store::{AlertStore, RedisError};

/// A named audience for editor alerts (`NEWSROOM_SEGMENTS`): devices matching every
/// non-empty list.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Device languages (primary subtag: "en" matches "en-GB"). Default: any.
    #[serde(default)]
    pub languages: Vec<String>,
    /// IANA time zones or prefixes ("Europe/", "America/New_York"). Default: any.
    #[serde(default)]
    pub timezones: Vec<String>,
    /// Channel names ("apns", "fcm", "web_push", "webhook", "in_app"). Default: any.
    #[serde(default)]
    pub channels: Vec<String>,
}

impl Segment {
    pub fn contains(&self, device: &Device) -> bool {
        let lang = device
            .language
            .split('-')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        (self.languages.is_empty() || self.languages.iter().any(|l| l.eq_ignore_ascii_case(&lang)))
            && (self.timezones.is_empty()
                || self
                    .timezones
                    .iter()
                    .any(|t| device.timezone.starts_with(t.as_str())))
            && (self.channels.is_empty()
                || newsroom_proto::v1::Channel::try_from(device.channel)
                    .is_ok_and(|c| self.channels.iter().any(|n| n == channel::name_of(c))))
    }
}

/// Whom an alert goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Audience {
    /// Followers of the story's topics and entities, and devices that chose them.
    Followers,
    Everyone,
    /// A configured segment (name, filter).
    Segment(String, Segment),
    /// The devices of one user, the canary (`NEWSROOM_CANARY_USER`): a canary story's only
    /// audience, whoever follows its topics.
    Canary(String),
}

impl Audience {
    pub fn label(&self) -> String {
        match self {
            Audience::Followers => "followers".into(),
            Audience::Everyone => "everyone".into(),
            Audience::Segment(name, _) => format!("segment:{name}"),
            Audience::Canary(user) => format!("canary:{user}"),
        }
    }
}

#[derive(Debug, Clone)]
enum Source {
    /// A set of user ids (full key).
    Users(String),
    /// A set of device ids (full key).
    Devices(String),
}

/// Walks an audience page by page.
pub struct AudienceCursor {
    store: AlertStore,
    sources: Vec<Source>,
    cursor: u64,
    page: usize,
    /// Devices read but not yet handed out (a page of users can hold more than a page of
    /// devices).
    pending: Vec<String>,
}

impl AudienceCursor {
    pub fn new(store: AlertStore, audience: &Audience, story: &StoryFacts, page: usize) -> Self {
        let mut sources = Vec::new();
        match audience {
            Audience::Followers => {
                for t in &story.topics {
                    sources.push(Source::Users(store.k(format!("audience:topic:{t}"))));
                    sources.push(Source::Devices(store.k(format!("alert-topic:{t}"))));
                }
                for e in &story.entities {
                    sources.push(Source::Users(store.k(format!("audience:entity:{e}"))));
                    sources.push(Source::Devices(store.k(format!("alert-entity:{e}"))));
                }
                // Readers following the developing story: the event ledger lets through only
                // what escalates past the alert that reached them.
                if let Some(c) = &story.cluster {
                    sources.push(Source::Users(store.k(format!("audience:cluster:{c}"))));
                }
            }
            Audience::Everyone | Audience::Segment(..) => {
                sources.push(Source::Devices(store.k("devices")));
            }
            Audience::Canary(user) => {
                sources.push(Source::Devices(store.k(format!("user-devices:{user}"))));
            }
        }
        sources.reverse();
        AudienceCursor {
            store,
            sources,
            cursor: 0,
            page: page.max(1),
            pending: Vec::new(),
        }
    }

    /// The next page of device ids; `None` when the audience is exhausted.
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>, RedisError> {
        loop {
            if self.pending.len() >= self.page {
                let rest = self.pending.split_off(self.page);
                return Ok(Some(std::mem::replace(&mut self.pending, rest)));
            }
            let Some(source) = self.sources.last().cloned() else {
                return Ok((!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending)));
            };
            let key = match &source {
                Source::Users(k) | Source::Devices(k) => k,
            };
            let (next, members) = self.store.scan_set(key, self.cursor, self.page).await?;
            if next == 0 {
                self.sources.pop();
                self.cursor = 0;
            } else {
                self.cursor = next;
            }
            if members.is_empty() {
                continue;
            }
            let devices = match source {
                Source::Devices(_) => members,
                Source::Users(_) => self.store.devices_of_users(&members).await?,
            };
            self.pending.extend(devices);
            if self.pending.len() >= self.page {
                let rest = self.pending.split_off(self.page);
                return Ok(Some(std::mem::replace(&mut self.pending, rest)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use newsroom_proto::v1::Channel;

    #[test]
    fn a_segment_matches_every_list_it_has() {
        let uk_apple: Segment = serde_json::from_str(
            r#"{"timezones": ["Europe/London"], "languages": ["en"], "channels": ["apns"]}"#,
        )
        .unwrap();
        let phone = Device {
            timezone: "Europe/London".into(),
            language: "en-GB".into(),
            channel: Channel::Apns as i32,
            ..Default::default()
        };
        assert!(uk_apple.contains(&phone));
        let android = Device {
            channel: Channel::Fcm as i32,
            ..phone.clone()
        };
        assert!(!uk_apple.contains(&android));
        let europe: Segment = serde_json::from_str(r#"{"timezones": ["Europe/"]}"#).unwrap();
        assert!(europe.contains(&android));
        assert!(Segment::default().contains(&Device::default()));
    }
}
