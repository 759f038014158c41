//! Ranking snapshots (`rec:snap:<id>`), each reader's cached first page (`rec:first:<user>`,
//! the snapshot it was served from), each reader's newest snapshots (`rec:snaps:<user>`, at
//! most [`MAX_SNAPSHOTS_PER_READER`]: older ones are dropped, their cursors expire) and the
//! marker that Redis holds the state (`rec:loaded`).
//!
//! A snapshot body is opaque here: [`crate::feed`] decides its format.

use newsroom_platform::redis::redis::{self, AsyncCommands as _};

use super::{FeedStore, RedisError};

/// Snapshots a reader keeps at once (one per first page ranked afresh): a client that forces
/// new rankings (follow, unfollow, feed, …) cannot fill Redis with snapshots of its own.
pub const MAX_SNAPSHOTS_PER_READER: isize = 8;

impl FeedStore {
    /// A snapshot's body, unless it expired.
    pub async fn snapshot(&self, snapshot: &str) -> Result<Option<String>, RedisError> {
        self.redis.conn().get(self.snapshot_key(snapshot)).await
    }

    /// Keeps a snapshot for `ttl_secs` and makes it `user`'s first page for `first_page_secs`,
    /// in one round trip.
    pub async fn save_first_page(
        &self,
        user: &str,
        snapshot: &str,
        body: &str,
        ttl_secs: u64,
        first_page_secs: u64,
    ) -> Result<(), RedisError> {
        let list = self.snapshots_key(user);
        let ((), (), (), (), evicted): ((), (), (), (), Vec<String>) = redis::pipe()
            .set_ex(self.snapshot_key(snapshot), body, ttl_secs)
            .set_ex(self.first_page_key(user), snapshot, first_page_secs)
            .lpush(&list, snapshot)
            .expire(&list, ttl_secs as i64)
            .lrange(&list, MAX_SNAPSHOTS_PER_READER, -1)
            .query_async(&mut self.redis.conn())
            .await?;
        if evicted.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for old in &evicted {
            pipe.del(self.snapshot_key(old)).ignore();
        }
        pipe.ltrim(&list, 0, MAX_SNAPSHOTS_PER_READER - 1)
            .ignore()
            .query_async::<()>(&mut self.redis.conn())
            .await
    }

    /// Drops a reader's cached first page and starts a new generation of theirs (ending any
    /// prepared feed): neither says what they want any more.
    pub async fn forget_first_page(&self, user: &str) -> Result<(), RedisError> {
        let mut pipe = redis::pipe();
        self.forget_first_page_in(&mut pipe, user);
        pipe.query_async(&mut self.redis.conn()).await
    }

    /// Adds [`Self::forget_first_page`] to `pipe` (beside the change that calls for it).
    pub(super) fn forget_first_page_in(&self, pipe: &mut redis::Pipeline, user: &str) {
        pipe.del(self.first_page_key(user)).ignore();
        self.new_generation(pipe, user);
    }

    /// Drops every reader's cached first page (after a rebuild, so that pages served while
    /// degraded are not reused).
    pub async fn forget_all_first_pages(&self) -> Result<(), RedisError> {
        let pattern = self.first_page_key("*");
        self.redis.delete_matching(&pattern).await.map(drop)
    }
}
