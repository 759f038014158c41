//! `type = "dedup"`: near-duplicate detection across sources — one cluster id per event.
//!
//! Each story gets a MinHash signature (60 hashes of its word 3-shingles, so reordered or
//! lightly edited copy stays close). Locality-sensitive hashing splits the signature into 20
//! bands of 3; stories sharing a band are candidates, and a candidate whose estimated Jaccard
//! similarity reaches `min_similarity` (and was accepted within `window_hours`) is the same
//! event: the story takes its cluster id. Otherwise the story starts a cluster named after
//! itself (`c-<story id>`). A new version of a story keeps its cluster.
//!
//! State lives in Redis (a cache: losing it only means a story arriving afterwards may start
//! its own cluster; the replay command rebuilds it): `enrich:lsh:<band>:<hash>` sorted sets of
//! story ids scored by event time, and `enrich:sig:<story id>` with the cluster and signature,
//! both expiring after the window. `EnrichPreview` reads without writing. Without Redis (tools,
//! unit tests) every story is its own cluster.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use newsroom_platform::redis::RedisStore;
use newsroom_platform::redis::redis::{self, AsyncCommands as _};
use newsroom_proto::v1::Enrichment;
use serde::Deserialize;

use super::{BuildContext, check_range};
use crate::stage::{DynStage, Fields, Stage, StageError, StageInput, StageOutput};
use crate::text;
use crate::topic_model::fnv1a;

/// Hashes per signature.
pub const HASHES: usize = 60;
/// LSH bands (of `HASHES / BANDS` rows each).
pub const BANDS: usize = 20;
const ROWS: usize = HASHES / BANDS;
/// Candidates read per band at most (bounds the work on a very common band).
const MAX_PER_BAND: usize = 50;

/// Params of the `dedup` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    /// Estimated Jaccard similarity of word 3-shingles (0..1) from which two stories are the
    /// same event. Default 0.5.
    #[serde(default = "default_similarity")]
    pub min_similarity: f64,
    /// How far apart (event time) two copies of one event may be, in hours (1..720). Default 48.
    #[serde(default = "default_window")]
    pub window_hours: u64,
}

fn default_similarity() -> f64 {
    0.5
}

fn default_window() -> u64 {
    48
}

impl DedupConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_range("min_similarity", self.min_similarity, 0.05, 1.0)?;
        check_range("window_hours", self.window_hours, 1, 720)
    }

    pub fn build(&self, cx: &BuildContext) -> DynStage {
        Arc::new(Dedup {
            redis: cx.redis.clone(),
            min_similarity: self.min_similarity,
            window: Duration::from_secs(self.window_hours * 3600),
        })
    }
}

struct Dedup {
    redis: Option<RedisStore>,
    min_similarity: f64,
    window: Duration,
}

/// A MinHash signature.
pub type Signature = [u32; HASHES];

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser: a cheap, well-spread permutation of 64-bit values.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The MinHash signature of a text's word 3-shingles (`None` for fewer than 3 words).
pub fn signature(text: &str) -> Option<Signature> {
    let words: Vec<String> = text::words(text).collect();
    if words.len() < 3 {
        return None;
    }
    let mut sig = [u32::MAX; HASHES];
    for w in words.windows(3) {
        let base = fnv1a(w.join(" ").as_bytes());
        for (i, slot) in sig.iter_mut().enumerate() {
            let h = (mix(base ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 32) as u32;
            if h < *slot {
                *slot = h;
            }
        }
    }
    Some(sig)
}

/// Estimated Jaccard similarity of two signatures.
pub fn similarity(a: &Signature, b: &Signature) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / HASHES as f64
}

fn band_keys(sig: &Signature) -> Vec<String> {
    (0..BANDS)
        .map(|b| {
            let mut bytes = Vec::with_capacity(ROWS * 4);
            for v in &sig[b * ROWS..(b + 1) * ROWS] {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            format!("enrich:lsh:{b}:{:016x}", fnv1a(&bytes))
        })
        .collect()
}

fn encode(cluster: &str, sig: &Signature) -> String {
    let hex: String = sig.iter().map(|v| format!("{v:08x}")).collect();
    format!("{cluster}\t{hex}")
}

fn decode(value: &str) -> Option<(String, Signature)> {
    let (cluster, hex) = value.split_once('\t')?;
    if hex.len() != HASHES * 8 {
        return None;
    }
    let mut sig = [0u32; HASHES];
    for (i, slot) in sig.iter_mut().enumerate() {
        *slot = u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok()?;
    }
    Some((cluster.to_owned(), sig))
}

fn redis_error(e: redis::RedisError) -> StageError {
    StageError::Failed(format!("redis: {e}"))
}

#[async_trait::async_trait]
impl Stage for Dedup {
    fn writes(&self) -> Fields {
        Fields::CLUSTER
    }

    async fn run(&self, input: &StageInput<'_>) -> Result<StageOutput, StageError> {
        let id = &input.story.id;
        let own = format!("c-{id}");
        let text = format!("{}\n{}", input.text.headline, input.text.body());
        let (Some(redis), Some(sig)) = (&self.redis, signature(&text)) else {
            return Ok(cluster(own));
        };
        let mut conn = redis.conn();
        let sig_key = |story: &str| redis.key(format!("enrich:sig:{story}"));
        let previous: Option<String> = conn.get(sig_key(id)).await.map_err(redis_error)?;
        let now_ms = input
            .event_time
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let window_ms = self.window.as_millis() as u64;
        let bands: Vec<String> = band_keys(&sig).iter().map(|k| redis.key(k)).collect();

        let found = match previous.as_deref().and_then(decode) {
            // A new version of a story stays in its cluster.
            Some((c, _)) => c,
            None => {
                let mut pipe = redis::pipe();
                for b in &bands {
                    pipe.cmd("ZRANGEBYSCORE")
                        .arg(b)
                        .arg(now_ms.saturating_sub(window_ms))
                        .arg(now_ms + window_ms)
                        .arg("LIMIT")
                        .arg(0)
                        .arg(MAX_PER_BAND);
                }
                let lists: Vec<Vec<String>> =
                    pipe.query_async(&mut conn).await.map_err(redis_error)?;
                let mut candidates: Vec<String> =
                    lists.into_iter().flatten().filter(|c| c != id).collect();
                candidates.sort();
                candidates.dedup();
                let mut best: Option<(f64, String)> = None;
                if !candidates.is_empty() {
                    let keys: Vec<String> = candidates.iter().map(|c| sig_key(c)).collect();
                    let values: Vec<Option<String>> =
                        conn.mget(&keys).await.map_err(redis_error)?;
                    for (c, sig_c) in values.iter().flatten().filter_map(|v| decode(v)) {
                        let s = similarity(&sig, &sig_c);
                        if s >= self.min_similarity && best.as_ref().is_none_or(|(b, _)| s > *b) {
                            best = Some((s, c));
                        }
                    }
                }
                best.map(|(_, c)| c).unwrap_or_else(|| own.clone())
            }
        };

        if input.mode.records() {
            let ttl = self.window.as_secs().max(60);
            let mut pipe = redis::pipe();
            pipe.cmd("SET")
                .arg(sig_key(id))
                .arg(encode(&found, &sig))
                .arg("EX")
                .arg(ttl)
                .ignore();
            for b in &bands {
                pipe.cmd("ZADD").arg(b).arg(now_ms).arg(id).ignore();
                pipe.cmd("ZREMRANGEBYSCORE")
                    .arg(b)
                    .arg(0)
                    .arg(now_ms.saturating_sub(2 * window_ms))
                    .ignore();
                pipe.cmd("EXPIRE").arg(b).arg(ttl * 2).ignore();
            }
            let () = pipe.query_async(&mut conn).await.map_err(redis_error)?;
        }
        Ok(cluster(found))
    }
}

fn cluster(id: String) -> StageOutput {
    Enrichment {
        cluster_id: id,
        ..Default::default()
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "Heavy rain caused flooding across the north of England on Tuesday, with hundreds of homes evacuated and rail services cancelled as rivers burst their banks. The Environment Agency issued severe flood warnings for parts of Yorkshire and Cumbria.";

    #[test]
    fn lightly_edited_copy_is_similar_and_other_copy_is_not() {
        let b = "Torrential rain caused flooding across the north of England on Tuesday, with hundreds of homes evacuated and rail services cancelled as rivers burst their banks. The Environment Agency issued severe flood warnings for parts of Yorkshire.";
        let c = "The central bank left interest rates unchanged on Thursday, saying inflation was close to its target and the economy was growing steadily after a weak start to the year.";
        let (sa, sb, sc) = (
            signature(A).unwrap(),
            signature(b).unwrap(),
            signature(c).unwrap(),
        );
        assert!(similarity(&sa, &sb) >= 0.5, "{}", similarity(&sa, &sb));
        assert!(similarity(&sa, &sc) < 0.1, "{}", similarity(&sa, &sc));
        // Near duplicates share at least one LSH band, so they meet as candidates.
        let (ka, kb) = (band_keys(&sa), band_keys(&sb));
        assert!(ka.iter().zip(&kb).any(|(x, y)| x == y));
    }

    #[test]
    fn a_signature_survives_its_redis_encoding() {
        let s = signature(A).unwrap();
        let (c, back) = decode(&encode("c-1", &s)).unwrap();
        assert_eq!((c.as_str(), back), ("c-1", s));
        assert!(signature("too short").is_none());
    }
}
