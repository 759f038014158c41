//! Audiences in Redis: who follows what (`notif:audience:{topic,entity,cluster}:<x>`, materialised
//! from `profiles` and undone through `notif:user-follows:<user>`), and the paging through a
//! set that [`crate::audience::AudienceCursor`] walks an audience with.

use std::collections::BTreeSet;

use newsroom_platform::redis::redis::{self, AsyncCommands as _};

use super::{AlertStore, RedisError};

impl AlertStore {
    /// One page of a set: the next cursor (0 = done) and members.
    pub async fn scan_set(
        &self,
        full_key: &str,
        cursor: u64,
        count: usize,
    ) -> Result<(u64, Vec<String>), RedisError> {
        redis::cmd("SSCAN")
            .arg(full_key)
            .arg(cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn())
            .await
    }

    /// Replaces what a user follows (topics, entities lower-cased, developing stories) in the
    /// audience index.
    pub async fn set_follows(
        &self,
        user: &str,
        topics: &BTreeSet<String>,
        entities: &BTreeSet<String>,
        clusters: &BTreeSet<String>,
    ) -> Result<(), RedisError> {
        let key = self.k(format!("user-follows:{user}"));
        let want: BTreeSet<String> = topics
            .iter()
            .map(|t| self.k(format!("audience:topic:{t}")))
            .chain(
                entities
                    .iter()
                    .map(|e| self.k(format!("audience:entity:{}", e.to_lowercase()))),
            )
            .chain(
                clusters
                    .iter()
                    .map(|c| self.k(format!("audience:cluster:{}", c.trim()))),
            )
            .collect();
        let old: BTreeSet<String> = self.conn().smembers(&key).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for gone in old.difference(&want) {
            pipe.srem(gone, user).ignore();
        }
        for added in want.difference(&old) {
            pipe.sadd(added, user).ignore();
        }
        pipe.del(&key).ignore();
        if !want.is_empty() {
            pipe.sadd(&key, want.iter().collect::<Vec<_>>()).ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await
    }
}
