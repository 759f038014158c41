//! `type = "dedup"`: near-duplicate detection across sources — one cluster id per event.
//!
//! Each story gets a MinHash signature (60 hashes of its word 3-shingles, so reordered or
//! lightly edited copy stays close). Locality-sensitive hashing splits the signature into 20
//! bands of 3; stories sharing a band are candidates, and a candidate whose estimated Jaccard
//! similarity reaches `min_similarity` (and was accepted within `window_hours`) is the same
//! event: the story takes its cluster id. Otherwise the story starts a cluster named after
//! itself (`c-<story id>`). A new version of a story keeps its cluster.
//!
//! When the story has an embedding (the `embedding` stage, or a remote stage that writes one)
//! and no copy is close enough by wording, the same event told in other words is looked for by
//! meaning: the stage compares the embedding with those of the `max_recent` latest stories in
//! the window and joins the cluster of the closest one at cosine ≥ `min_cosine`.
//!
//! State lives in Redis (a cache: losing it only means a story arriving afterwards may start
//! its own cluster; the replay command rebuilds it): `enrich:{dedup}:lsh:<band>:<hash>` sorted
//! sets of story ids scored by event time, `enrich:{dedup}:sig:<story id>` with the cluster and
//! signature (these and the cluster counter `enrich:{dedup}:seq` share a Redis Cluster slot:
//! one script records a story in all of them),
//! `enrich:vec:<story id>` with the embedding and `enrich:recent` (story ids by event time), all
//! expiring after the window. `EnrichPreview` reads without writing. Without Redis (tools, unit
//! tests) every story is its own cluster.
//!
//! Two copies of one event arriving at the same instant (on different partitions, or different
//! replicas) would each find nothing and start clusters of their own — and a reader would get
//! two alerts for one event. So a story is recorded atomically with a sequence number
//! (`enrich:seq`, in the same script as its band entries), and a story that started its own
//! cluster looks again once recorded: if an earlier-recorded copy is close enough, it joins that
//! copy's cluster. Whichever of two concurrent copies was recorded second sees the first, and
//! the first ignores the second: both end in the first one's cluster.

use std::sync::Arc;
use std::time::Duration;

use newsroom_platform::redis::RedisStore;
use newsroom_platform::redis::redis::{self, AsyncCommands as _};
use newsroom_proto::v1::Enrichment;
use serde::Deserialize;

use super::{BuildContext, BuildError, StageParams, check_range};
use crate::hash::fnv1a;
use crate::stage::{DynStage, Fields, Stage, StageError, StageInput, StageOutput};
use crate::text;

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
    /// Cosine similarity (0..1) of embeddings from which two stories are the same event when
    /// their wording differs. Default 0.9.
    #[serde(default = "default_cosine")]
    pub min_cosine: f64,
    /// Latest stories compared by embedding (0..2000; 0 = never by meaning). Default 200.
    #[serde(default = "default_recent")]
    pub max_recent: usize,
}

fn default_cosine() -> f64 {
    0.9
}

fn default_recent() -> usize {
    200
}

fn default_similarity() -> f64 {
    0.5
}

fn default_window() -> u64 {
    48
}

impl StageParams for DedupConfig {
    fn validate(&self) -> Result<(), String> {
        check_range("min_similarity", self.min_similarity, 0.05, 1.0)?;
        check_range("window_hours", self.window_hours, 1, 720)?;
        check_range("min_cosine", self.min_cosine, 0.0, 1.0)?;
        check_range("max_recent", self.max_recent, 0, 2000)
    }

    fn build(&self, _name: &str, cx: &BuildContext) -> Result<DynStage, BuildError> {
        Ok(Arc::new(Dedup {
            redis: cx.redis.clone(),
            min_similarity: self.min_similarity,
            window: Duration::from_secs(self.window_hours * 3600),
            min_cosine: self.min_cosine,
            max_recent: self.max_recent,
        }))
    }
}

struct Dedup {
    redis: Option<RedisStore>,
    min_similarity: f64,
    window: Duration,
    min_cosine: f64,
    max_recent: usize,
}

fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn vector(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Cosine similarity (0 for vectors of different lengths or zero vectors).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
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
            format!("enrich:{{dedup}}:lsh:{b}:{:016x}", fnv1a(&bytes))
        })
        .collect()
}

fn hex_of(sig: &Signature) -> String {
    sig.iter().map(|v| format!("{v:08x}")).collect()
}

/// `<cluster>\t<signature hex>\t<sequence>`, as the record script writes it.
fn encode(cluster: &str, sig: &Signature, seq: u64) -> String {
    format!("{cluster}\t{}\t{seq}", hex_of(sig))
}

/// The order a stored story was recorded in (0 for entries written before sequences).
fn seq_of(value: &str) -> u64 {
    value
        .splitn(3, '\t')
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Records a story's signature and band entries atomically with the next sequence number.
/// KEYS: sig key, sequence key, band keys. ARGV: cluster, signature hex, event time, ttl, id.
const RECORD: &str = r"
local seq = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '\t' .. ARGV[2] .. '\t' .. seq, 'EX', ARGV[4])
for i = 3, #KEYS do redis.call('ZADD', KEYS[i], ARGV[3], ARGV[5]) end
return seq
";

static RECORD_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(RECORD));

fn decode(value: &str) -> Option<(String, Signature)> {
    let mut parts = value.splitn(3, '\t');
    let (cluster, hex) = (parts.next()?, parts.next()?);
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
    fn reads(&self) -> Fields {
        Fields::EMBEDDING
    }

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
        let sig_key = |story: &str| redis.key(format!("enrich:{{dedup}}:sig:{story}"));
        let previous: Option<String> = conn.get(sig_key(id)).await.map_err(redis_error)?;
        let now_ms = newsroom_platform::time::ms_of(input.event_time).max(0) as u64;
        let window_ms = self.window.as_millis() as u64;
        let bands: Vec<String> = band_keys(&sig).iter().map(|k| redis.key(k)).collect();

        let window = (now_ms.saturating_sub(window_ms), now_ms + window_ms);
        let is_new = previous.is_none();
        let mut found = match previous.as_deref().and_then(decode) {
            // A new version of a story stays in its cluster.
            Some((c, _)) => c,
            None => {
                let close = self.close_copies(&mut conn, redis, &bands, id, &sig, window).await?;
                let best = close
                    .into_iter()
                    .max_by(|a, b| a.similarity.total_cmp(&b.similarity));
                match best {
                    Some(c) => c.cluster,
                    None => self
                        .by_meaning(redis, input, now_ms, window_ms)
                        .await?
                        .unwrap_or_else(|| own.clone()),
                }
            }
        };

        if input.mode.records() {
            let ttl = self.window.as_secs().max(60);
            let mut record = RECORD_SCRIPT.prepare_invoke();
            record.key(sig_key(id)).key(redis.key("enrich:{dedup}:seq"));
            for b in &bands {
                record.key(b);
            }
            record
                .arg(&found)
                .arg(hex_of(&sig))
                .arg(now_ms)
                .arg(ttl)
                .arg(id);
            let seq: u64 = record
                .invoke_async(&mut conn)
                .await
                .map_err(redis_error)?;
            // Started a cluster of its own: a copy recorded just before it (its seq lower) that
            // found nothing either is the same event; join the first-recorded one's cluster.
            if is_new && found == own {
                let close = self.close_copies(&mut conn, redis, &bands, id, &sig, window).await?;
                if let Some(first) = close
                    .into_iter()
                    .filter(|c| c.seq < seq)
                    .min_by_key(|c| c.seq)
                {
                    found = first.cluster;
                    let () = conn
                        .set_ex(sig_key(id), encode(&found, &sig, seq), ttl)
                        .await
                        .map_err(redis_error)?;
                }
            }
            let mut pipe = redis::pipe();
            for b in &bands {
                pipe.cmd("ZREMRANGEBYSCORE")
                    .arg(b)
                    .arg(0)
                    .arg(now_ms.saturating_sub(2 * window_ms))
                    .ignore();
                pipe.cmd("EXPIRE").arg(b).arg(ttl * 2).ignore();
            }
            let embedding = &input.enrichment.embedding;
            if !embedding.is_empty() && self.max_recent > 0 {
                let recent = redis.key("enrich:recent");
                pipe.cmd("SET")
                    .arg(redis.key(format!("enrich:vec:{id}")))
                    .arg(vector_bytes(embedding))
                    .arg("EX")
                    .arg(ttl)
                    .ignore();
                pipe.cmd("ZADD").arg(&recent).arg(now_ms).arg(id).ignore();
                pipe.cmd("ZREMRANGEBYSCORE")
                    .arg(&recent)
                    .arg(0)
                    .arg(now_ms.saturating_sub(2 * window_ms))
                    .ignore();
                pipe.cmd("EXPIRE").arg(&recent).arg(ttl * 2).ignore();
            }
            let () = pipe.query_async(&mut conn).await.map_err(redis_error)?;
        }
        Ok(cluster(found))
    }
}

/// A recorded story close enough to be the same event.
struct CloseCopy {
    cluster: String,
    similarity: f64,
    seq: u64,
}

impl Dedup {
    /// Recorded stories (other than `id`) sharing a band with `sig` within the window, whose
    /// estimated similarity reaches `min_similarity`.
    async fn close_copies(
        &self,
        conn: &mut newsroom_platform::redis::Conn,
        redis: &RedisStore,
        bands: &[String],
        id: &str,
        sig: &Signature,
        (from, to): (u64, u64),
    ) -> Result<Vec<CloseCopy>, StageError> {
        let mut pipe = redis::pipe();
        for b in bands {
            pipe.cmd("ZRANGEBYSCORE")
                .arg(b)
                .arg(from)
                .arg(to)
                .arg("LIMIT")
                .arg(0)
                .arg(MAX_PER_BAND);
        }
        let lists: Vec<Vec<String>> = pipe.query_async(conn).await.map_err(redis_error)?;
        let mut candidates: Vec<String> = lists.into_iter().flatten().filter(|c| c != id).collect();
        candidates.sort();
        candidates.dedup();
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = candidates
            .iter()
            .map(|c| redis.key(format!("enrich:{{dedup}}:sig:{c}")))
            .collect();
        let values: Vec<Option<String>> = conn.mget(&keys).await.map_err(redis_error)?;
        Ok(values
            .iter()
            .flatten()
            .filter_map(|v| {
                let (cluster, sig_c) = decode(v)?;
                let similarity = similarity(sig, &sig_c);
                (similarity >= self.min_similarity).then(|| CloseCopy {
                    cluster,
                    similarity,
                    seq: seq_of(v),
                })
            })
            .collect())
    }

    /// The cluster of the closest recent story by embedding, if close enough.
    async fn by_meaning(
        &self,
        redis: &RedisStore,
        input: &StageInput<'_>,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<Option<String>, StageError> {
        let embedding = &input.enrichment.embedding;
        if embedding.is_empty() || self.max_recent == 0 {
            return Ok(None);
        }
        let mut conn = redis.conn();
        let ids: Vec<String> = redis::cmd("ZREVRANGEBYSCORE")
            .arg(redis.key("enrich:recent"))
            .arg(now_ms + window_ms)
            .arg(now_ms.saturating_sub(window_ms))
            .arg("LIMIT")
            .arg(0)
            .arg(self.max_recent)
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let ids: Vec<String> = ids.into_iter().filter(|c| *c != input.story.id).collect();
        if ids.is_empty() {
            return Ok(None);
        }
        let vec_keys: Vec<String> = ids
            .iter()
            .map(|c| redis.key(format!("enrich:vec:{c}")))
            .collect();
        let vectors: Vec<Option<Vec<u8>>> = conn.mget(&vec_keys).await.map_err(redis_error)?;
        let best = ids
            .iter()
            .zip(vectors)
            .filter_map(|(c, v)| Some((c, cosine(embedding, &vector(&v?)))))
            .filter(|(_, s)| *s >= self.min_cosine)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((story, _)) = best else {
            return Ok(None);
        };
        let value: Option<String> = conn
            .get(redis.key(format!("enrich:{{dedup}}:sig:{story}")))
            .await
            .map_err(redis_error)?;
        Ok(value.and_then(|v| decode(&v)).map(|(c, _)| c))
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
    fn cosine_and_vector_encoding() {
        let v = [0.6f32, 0.8, 0.0];
        assert!((cosine(&v, &vector(&vector_bytes(&v))) - 1.0).abs() < 1e-9);
        assert!(cosine(&v, &[0.0, 0.0, 1.0]).abs() < 1e-9);
        assert_eq!(cosine(&v, &[1.0]), 0.0);
    }

    #[test]
    fn a_signature_survives_its_redis_encoding() {
        let s = signature(A).unwrap();
        let stored = encode("c-1", &s, 42);
        let (c, back) = decode(&stored).unwrap();
        assert_eq!((c.as_str(), back, seq_of(&stored)), ("c-1", s, 42));
        // Written before sequences: read as recorded first.
        let old = format!("c-2\t{}", hex_of(&s));
        assert_eq!(decode(&old).map(|(c, _)| c).as_deref(), Some("c-2"));
        assert_eq!(seq_of(&old), 0);
        assert!(signature("too short").is_none());
    }
}
