//! Embargoed stories and the alerts sealed until their release (see [`crate::sealed`]):
//! `notif:held` (hash: story id → `<embargo end ms>|<urgency>`), as ingest's `stories.held`
//! has them, and `notif:sealed:<story>` (hash: request key → `AlertRequest` bytes), the
//! editors' alerts waiting for the story's release.

use newsroom_platform::redis::redis::{self, AsyncCommands as _};
use newsroom_platform::time::timestamp_ms;
use newsroom_proto::Message as _;
use newsroom_proto::v1::AlertRequest;
use sha2::Digest as _;

use super::{AlertStore, LEDGER_TTL_SECS, RedisError};

/// A story ingest holds until its embargo ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// When the embargo ends (Unix ms).
    pub until_ms: i64,
    /// The story's IPTC urgency (0: not given), for the alert's lane.
    pub urgency: u32,
}

impl Held {
    fn encode(self) -> String {
        format!("{}|{}", self.until_ms, self.urgency)
    }

    fn decode(raw: &str) -> Option<Held> {
        let (until, urgency) = raw.split_once('|')?;
        Some(Held {
            until_ms: until.parse().ok()?,
            urgency: urgency.parse().ok()?,
        })
    }
}

/// The key of a sealed request: its time and a digest of it, the same every time the request
/// is parked (a redelivery, a rebuild), so parking it again changes nothing.
fn request_key(request: &AlertRequest) -> String {
    let at = request
        .requested_at
        .as_ref()
        .and_then(timestamp_ms)
        .unwrap_or_default();
    let digest = sha2::Sha256::digest(request.encode_to_vec());
    format!("{at}:{}", hex::encode(&digest[..8]))
}

impl AlertStore {
    /// Story `id` is held until `held.until_ms`.
    pub async fn hold(&self, id: &str, held: Held) -> Result<(), RedisError> {
        self.conn().hset(self.k("held"), id, held.encode()).await
    }

    /// Story `id` is no longer held (released, or its hold withdrawn).
    pub async fn unhold(&self, id: &str) -> Result<(), RedisError> {
        self.conn().hdel(self.k("held"), id).await
    }

    /// Whether ingest holds story `id`, and until when.
    pub async fn held(&self, id: &str) -> Result<Option<Held>, RedisError> {
        let raw: Option<String> = self.conn().hget(self.k("held"), id).await?;
        Ok(raw.as_deref().and_then(Held::decode))
    }

    /// Parks an editor's alert until its story is released.
    pub async fn seal(&self, request: &AlertRequest) -> Result<(), RedisError> {
        let key = self.k(format!("sealed:{}", request.story_id));
        let mut pipe = redis::pipe();
        pipe.hset(&key, request_key(request), request.encode_to_vec())
            .ignore()
            .expire(&key, LEDGER_TTL_SECS as i64)
            .ignore();
        pipe.query_async::<()>(&mut self.conn()).await
    }

    /// The alerts parked for story `id`, each with its key.
    pub async fn sealed(&self, id: &str) -> Result<Vec<(String, AlertRequest)>, RedisError> {
        let raw: Vec<(String, Vec<u8>)> =
            self.conn().hgetall(self.k(format!("sealed:{id}"))).await?;
        Ok(raw
            .into_iter()
            .filter_map(|(k, v)| Some((k, AlertRequest::decode(v.as_slice()).ok()?)))
            .collect())
    }

    /// A parked alert of story `id` has been sent.
    pub async fn unseal(&self, id: &str, key: &str) -> Result<(), RedisError> {
        self.conn().hdel(self.k(format!("sealed:{id}")), key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_reads_back_and_a_request_keeps_its_key() {
        let held = Held {
            until_ms: 1_764_000_000_000,
            urgency: 2,
        };
        assert_eq!(Held::decode(&held.encode()), Some(held));
        assert_eq!(Held::decode("soon|2"), None);
        let request = AlertRequest {
            story_id: "s1".into(),
            requested_at: Some(prost_types::Timestamp {
                seconds: 1_764_000_000,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert_eq!(request_key(&request), request_key(&request.clone()));
        assert!(request_key(&request).starts_with("1764000000000:"));
        let critical = AlertRequest {
            critical: true,
            ..request.clone()
        };
        assert_ne!(request_key(&request), request_key(&critical));
    }
}
