//! Stories in Redis: what an alert needs of a story (`notif:story:<id>`, body and embedding
//! dropped), the `traceparent` it came with (`notif:story-trace:<id>`), and killed stories
//! (`notif:killed:<id>`), which never alert again.

use newsroom_platform::redis::redis::{self, AsyncCommands as _};
use newsroom_proto::Message as _;
use newsroom_proto::v1::EnrichedStory;

use super::{AlertStore, LEDGER_TTL_SECS, RedisError};

impl AlertStore {
    /// Keeps what an alert needs of a story (body and embedding dropped), and the
    /// `traceparent` of the record it came in, so that an editor's alert about it later links
    /// its fan-out to the story version's trace. The caller keeps versions from going back
    /// (see `AlertHandler::story`).
    pub async fn put_story(
        &self,
        story: &EnrichedStory,
        traceparent: Option<&str>,
    ) -> Result<(), RedisError> {
        let mut s = story.clone();
        if let Some(st) = s.story.as_mut() {
            st.body_html.clear();
        }
        if let Some(e) = s.enrichment.as_mut() {
            e.embedding.clear();
        }
        let id = s.story.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        let mut pipe = redis::pipe();
        pipe.set_ex(
            self.k(format!("story:{id}")),
            s.encode_to_vec(),
            LEDGER_TTL_SECS,
        )
        .ignore();
        let trace = self.k(format!("story-trace:{id}"));
        match traceparent {
            Some(tp) => pipe.set_ex(trace, tp, LEDGER_TTL_SECS).ignore(),
            None => pipe.del(trace).ignore(),
        };
        pipe.query_async::<()>(&mut self.conn()).await
    }

    /// The `traceparent` of the record that brought the story's latest version.
    pub async fn story_trace(&self, id: &str) -> Result<Option<String>, RedisError> {
        self.conn().get(self.k(format!("story-trace:{id}"))).await
    }

    pub async fn story(&self, id: &str) -> Result<Option<EnrichedStory>, RedisError> {
        let raw: Option<Vec<u8>> = self.conn().get(self.k(format!("story:{id}"))).await?;
        Ok(raw.and_then(|b| EnrichedStory::decode(b.as_slice()).ok()))
    }

    /// A killed story: forgotten, and never alerted again.
    pub async fn kill_story(&self, id: &str) -> Result<(), RedisError> {
        let mut pipe = redis::pipe();
        pipe.del(self.k(format!("story:{id}")))
            .ignore()
            .set_ex(self.k(format!("killed:{id}")), 1, LEDGER_TTL_SECS)
            .ignore();
        pipe.query_async::<()>(&mut self.conn()).await
    }

    pub async fn is_killed(&self, id: &str) -> Result<bool, RedisError> {
        self.conn().exists(self.k(format!("killed:{id}"))).await
    }
}
