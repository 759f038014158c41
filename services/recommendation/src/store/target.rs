//! [`IndexKey`]: a follow target (topic, entity, section, author) and the feed index it reads,
//! in the form the follow sets and index keys store it (`topic:medtop:13000000`).

use newsroom_proto::v1::{FollowTarget, TargetKind};

/// The feed index a follow target reads (and a story is written to).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexKey {
    pub kind: TargetKind,
    pub value: String,
}

impl IndexKey {
    pub fn new(kind: TargetKind, value: &str) -> Self {
        IndexKey {
            kind,
            value: normalise(kind, value),
        }
    }

    /// `topic:medtop:13000000`
    pub fn member(&self) -> String {
        format!("{}:{}", kind_name(self.kind), self.value)
    }

    pub fn parse_member(member: &str) -> Option<Self> {
        let (kind, value) = member.split_once(':')?;
        let kind = match kind {
            "topic" => TargetKind::Topic,
            "entity" => TargetKind::Entity,
            "section" => TargetKind::Section,
            "author" => TargetKind::Author,
            "cluster" => TargetKind::Cluster,
            _ => return None,
        };
        Some(IndexKey::new(kind, value))
    }

    pub fn target(&self) -> FollowTarget {
        FollowTarget {
            kind: self.kind as i32,
            value: self.value.clone(),
        }
    }
}

fn kind_name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Topic => "topic",
        TargetKind::Entity => "entity",
        TargetKind::Section => "section",
        TargetKind::Author => "author",
        TargetKind::Cluster => "cluster",
        TargetKind::Unspecified => "unspecified",
    }
}

/// Topics and clusters are codes (kept as sent); names are matched case-insensitively.
fn normalise(kind: TargetKind, value: &str) -> String {
    match kind {
        TargetKind::Topic | TargetKind::Cluster => value.trim().to_owned(),
        _ => value.trim().to_lowercase(),
    }
}

/// Follow targets from the members of a reader's follow set, sorted.
pub fn follows_of(members: &[String]) -> Vec<IndexKey> {
    let mut keys: Vec<IndexKey> = members
        .iter()
        .filter_map(|m| IndexKey::parse_member(m))
        .collect();
    keys.sort();
    keys
}
