//! A reader's taste: the centre of what they engaged with, in embedding space.
//!
//! Topics say what a story is filed under; the MiniLM embedding enrichment attaches says what it
//! is about. Each positive interaction (a view, click, read or share) adds the story's unit
//! embedding, times the interaction's [`crate::interests::weight`], to a per-reader sum that
//! halves every [`crate::interests::INTEREST_HALF_LIFE_DAYS`] days like the topic interests.
//! The sum's direction is the reader's taste; its decayed weight says how much it is worth.
//!
//! A first page then compares the newest [`POOL`] stories with the taste: those within cosine
//! [`MIN_COSINE`] become candidates ("Close to what you read"), so a story on a topic the reader
//! never followed, and whose topic is none of their strongest, still reaches them when it is
//! near in meaning to what they read. Dismissed alerts and hides do not move the taste.
//!
//! Stored as `rec:taste:{<user>}` (see [`crate::store`]): 16 bytes of header (last update ms,
//! weight) and the sum as little-endian `f32`s.

use crate::interests::decayed;

/// The newest stories compared with a reader's taste.
pub const POOL: usize = 300;
/// The weight a taste needs before it brings candidates: about a click (a view is 1).
pub const MIN_WEIGHT: f64 = 2.0;
/// The lowest cosine between the taste and a story that makes the story a candidate.
/// MiniLM puts unrelated news near 0.1–0.3 and stories on one subject above 0.5; a centre of
/// several stories sits a little lower to each of them.
pub const MIN_COSINE: f32 = 0.4;
/// The cosine at and above which a story is as close as a taste can bring it.
pub const FULL_COSINE: f32 = 0.75;

const HEADER: usize = 16;

/// A reader's taste as stored: the weighted sum of what they engaged with, when last updated.
#[derive(Debug, Clone, PartialEq)]
pub struct Taste {
    pub sum: Vec<f32>,
    pub weight: f64,
    pub at_ms: i64,
}

impl Taste {
    /// The taste after engaging at `at_ms` with weight `w` with a story of unit embedding
    /// `v`; a first taste when `self` is `None`. A vector of another length (a changed model)
    /// starts the taste afresh.
    pub fn engaged(current: Option<Taste>, v: &[f32], w: f64, at_ms: i64) -> Taste {
        let mut t = match current {
            Some(t) if t.sum.len() == v.len() => t.decayed_to(at_ms),
            _ => Taste {
                sum: vec![0.0; v.len()],
                weight: 0.0,
                at_ms,
            },
        };
        for (s, x) in t.sum.iter_mut().zip(v) {
            *s += (w as f32) * x;
        }
        t.weight += w;
        t.at_ms = at_ms.max(t.at_ms);
        t
    }

    /// The taste decayed to `now_ms`.
    pub fn decayed_to(mut self, now_ms: i64) -> Taste {
        let half_life = crate::interests::INTEREST_HALF_LIFE_DAYS * 86_400_000.0;
        let factor = decayed(1.0, self.at_ms, now_ms, half_life);
        for s in &mut self.sum {
            *s *= factor as f32;
        }
        self.weight *= factor;
        self.at_ms = self.at_ms.max(now_ms);
        self
    }

    /// The unit direction of the taste, if it weighs at least [`MIN_WEIGHT`].
    pub fn direction(&self) -> Option<Vec<f32>> {
        let norm = self.sum.iter().map(|x| x * x).sum::<f32>().sqrt();
        (self.weight >= MIN_WEIGHT && norm > 0.0)
            .then(|| self.sum.iter().map(|x| x / norm).collect())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + 4 * self.sum.len());
        out.extend_from_slice(&self.at_ms.to_le_bytes());
        out.extend_from_slice(&self.weight.to_le_bytes());
        for x in &self.sum {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }

    /// `None` for bytes that are not a taste (cut short, or not whole floats).
    pub fn decode(b: &[u8]) -> Option<Taste> {
        if b.len() < HEADER || !(b.len() - HEADER).is_multiple_of(4) {
            return None;
        }
        let at_ms = i64::from_le_bytes(b[0..8].try_into().ok()?);
        let weight = f64::from_le_bytes(b[8..16].try_into().ok()?);
        let sum = b[HEADER..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        weight.is_finite().then_some(Taste { sum, weight, at_ms })
    }
}

/// How strongly a story at cosine `cos` from the taste ties to the reader (0–1), `None` below
/// [`MIN_COSINE`].
pub fn strength(cos: f32) -> Option<f64> {
    (cos >= MIN_COSINE)
        .then(|| f64::from(((cos - MIN_COSINE) / (FULL_COSINE - MIN_COSINE)).clamp(0.0, 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn the_taste_leans_towards_what_was_read_most_and_round_trips() {
        let a = unit(&[1.0, 0.0, 0.0]);
        let b = unit(&[0.0, 1.0, 0.0]);
        let t = Taste::engaged(None, &a, 3.0, 0);
        let t = Taste::engaged(Some(t), &b, 1.0, 0);
        let d = t.direction().expect("a read and a view weigh enough");
        assert!(d[0] > d[1] && d[1] > 0.0, "{d:?}");
        assert_eq!(Taste::decode(&t.encode()), Some(t.clone()));
        assert_eq!(Taste::decode(&[1, 2, 3]), None);
        assert_eq!(Taste::decode(&t.encode()[..21]), None);
    }

    #[test]
    fn a_single_glance_is_not_a_taste_and_old_reading_fades() {
        let a = unit(&[1.0, 0.0]);
        assert_eq!(Taste::engaged(None, &a, 1.0, 0).direction(), None);
        let week = (crate::interests::INTEREST_HALF_LIFE_DAYS * 86_400_000.0) as i64;
        let t = Taste::engaged(None, &a, 4.0, 0).decayed_to(2 * week);
        assert!((t.weight - 1.0).abs() < 1e-9, "two half-lives: a quarter");
        assert_eq!(t.direction(), None);
        // A new model's vectors start afresh rather than mixing spaces.
        let t = Taste::engaged(Some(t), &unit(&[0.0, 0.0, 1.0]), 3.0, 2 * week);
        assert_eq!(t.sum.len(), 3);
        assert_eq!(t.weight, 3.0);
    }

    #[test]
    fn closeness_starts_at_the_threshold_and_saturates() {
        assert_eq!(strength(MIN_COSINE - 0.01), None);
        assert_eq!(strength(MIN_COSINE), Some(0.0));
        assert_eq!(strength(0.99), Some(1.0));
        let mid = strength((MIN_COSINE + FULL_COSINE) / 2.0).unwrap();
        assert!((mid - 0.5).abs() < 1e-3);
    }
}
