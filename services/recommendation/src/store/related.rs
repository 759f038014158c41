//! Related stories for a story page: the same news event first (its near-duplicate cluster),
//! then the stories nearest in meaning (cosine of MiniLM embeddings) published within
//! [`WINDOW_MS`] of it.
//!
//! Each story's embedding is kept quantised beside its card (`rec:{rec}:vec:<id>`: 384 signed
//! bytes, scale [`SCALE`]; cosine error below 0.01), written and deleted in the same `MULTI` as
//! the story, so a killed story is never anyone's related story. A lookup reads the window's
//! newest [`MAX_CANDIDATES`] ids from the latest index and their vectors in one `MGET`.

use newsroom_platform::redis::redis::AsyncCommands as _;
use newsroom_proto::v1::{EnrichedStory, TargetKind};

use super::{FeedStore, Index, IndexKey, RedisError, published_ms};

/// How far apart in publication time a related story may be: two days either side.
pub const WINDOW_MS: i64 = 48 * 3600 * 1000;
/// Stories of the window compared at most (the newest).
pub const MAX_CANDIDATES: usize = 500;
/// Lowest cosine that counts as related (MiniLM: unrelated news sits near 0.1–0.3, stories
/// on one subject above 0.5).
pub const MIN_COSINE: f32 = 0.5;
/// Members of the story's own cluster read at most.
const CLUSTER_MAX: usize = 20;
/// Quantisation scale of a unit vector's components.
pub const SCALE: f32 = 127.0;

/// A related story: its id, why, and how close.
#[derive(Debug, Clone, PartialEq)]
pub struct Related {
    pub id: String,
    /// In the story's own near-duplicate cluster (the same event).
    pub same_event: bool,
    /// Cosine similarity (1.0 for the same event).
    pub similarity: f32,
}

/// A unit vector as signed bytes.
pub fn quantise(v: &[f32]) -> Vec<u8> {
    v.iter()
        .map(|x| (x * SCALE).round().clamp(-127.0, 127.0) as i8 as u8)
        .collect()
}

/// A stored vector as a unit `f32` vector.
pub fn dequantise(stored: &[u8]) -> Vec<f32> {
    let v: Vec<f32> = stored.iter().map(|&b| f32::from(b as i8)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        v
    } else {
        v.iter().map(|x| x / norm).collect()
    }
}

/// Cosine between a unit vector and a stored one (0 for no vector or another length).
pub fn cosine(q: &[f32], stored: &[u8]) -> f32 {
    if stored.len() != q.len() {
        return 0.0;
    }
    let (mut dot, mut norm) = (0.0f32, 0.0f32);
    for (a, &b) in q.iter().zip(stored) {
        let b = f32::from(b as i8);
        dot += a * b;
        norm += b * b;
    }
    if norm == 0.0 { 0.0 } else { dot / norm.sqrt() }
}

impl FeedStore {
    pub(super) fn vector_key(&self, id: &str) -> String {
        self.redis.key(format!("rec:{{rec}}:vec:{id}"))
    }

    /// The quantised embeddings of `ids`, in order (`None` where a story has none), in one
    /// `MGET`.
    pub async fn vectors(&self, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>, RedisError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.vector_key(id)).collect();
        self.redis.conn().mget(keys).await
    }

    /// The newest `limit` ids of `index` published before `before_ms`, with their times.
    pub async fn newest_before(
        &self,
        index: &Index,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, RedisError> {
        let max = format!("({before_ms}");
        let out: Vec<(String, f64)> = self
            .redis
            .conn()
            .zrevrangebyscore_limit_withscores(
                self.index_key(index),
                max,
                "-inf",
                0,
                limit as isize,
            )
            .await?;
        Ok(out.into_iter().map(|(id, ms)| (id, ms as i64)).collect())
    }

    /// Up to `limit` related stories of `story`, the same event first (newest first), then the
    /// nearest in meaning.
    pub async fn related(
        &self,
        story: &EnrichedStory,
        limit: usize,
    ) -> Result<Vec<Related>, RedisError> {
        let Some(s) = &story.story else {
            return Ok(Vec::new());
        };
        let enrichment = story.enrichment.clone().unwrap_or_default();
        let mut out: Vec<Related> = Vec::new();
        if !enrichment.cluster_id.is_empty() {
            let index = Index::Target(IndexKey::new(TargetKind::Cluster, &enrichment.cluster_id));
            let members = self.newest(&[(index, CLUSTER_MAX)]).await?;
            out.extend(
                members
                    .into_iter()
                    .flatten()
                    .filter(|id| *id != s.id)
                    .map(|id| Related {
                        id,
                        same_event: true,
                        similarity: 1.0,
                    }),
            );
        }
        let q = &enrichment.embedding;
        if out.len() < limit && !q.is_empty() {
            let ms = published_ms(story);
            let ids: Vec<String> = self
                .redis
                .conn()
                .zrevrangebyscore_limit(
                    self.index_key(&Index::Latest),
                    ms + WINDOW_MS,
                    ms - WINDOW_MS,
                    0,
                    MAX_CANDIDATES as isize,
                )
                .await?;
            let ids: Vec<String> = ids
                .into_iter()
                .filter(|id| *id != s.id && !out.iter().any(|r| r.id == *id))
                .collect();
            if !ids.is_empty() {
                let vectors = self.vectors(&ids).await?;
                let mut near: Vec<Related> = ids
                    .into_iter()
                    .zip(vectors)
                    .filter_map(|(id, v)| {
                        let similarity = cosine(q, &v?);
                        (similarity >= MIN_COSINE).then_some(Related {
                            id,
                            same_event: false,
                            similarity,
                        })
                    })
                    .collect();
                near.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.id.cmp(&b.id)));
                out.extend(near);
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantised_vectors_keep_their_cosine() {
        let a: Vec<f32> = (0..384)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 40.0)
            .collect();
        let norm = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let a: Vec<f32> = a.iter().map(|x| x / norm).collect();
        let mut b = a.clone();
        b[0] = -b[0];
        b[5] += 0.2;
        let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        let b: Vec<f32> = b.iter().map(|x| x / nb).collect();
        let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let approx = cosine(&a, &quantise(&b));
        assert!((exact - approx).abs() < 0.01, "{exact} vs {approx}");
        assert!((cosine(&a, &quantise(&a)) - 1.0).abs() < 0.01);
        assert_eq!(cosine(&a, &[]), 0.0, "no vector, no similarity");
        let back = dequantise(&quantise(&a));
        let dot: f32 = a.iter().zip(&back).map(|(x, y)| x * y).sum();
        assert!(dot > 0.99, "{dot}");
    }
}
