//! What a ranking snapshot holds and how a cursor points into it.
//!
//! A snapshot is the ranked entries of one first page, one line each
//! (`id \t score \t reason␟reason`), kept in Redis so that the next pages come from the same
//! ranking; a [`Cursor`] (`<snapshot>.<offset>`) is a position in it.

/// A position in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub snapshot: String,
    pub offset: usize,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.snapshot, self.offset)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (snapshot, offset) = s.split_once('.')?;
        let valid = !snapshot.is_empty() && snapshot.chars().all(|c| c.is_ascii_hexdigit());
        let offset = offset.parse().ok()?;
        valid.then(|| Cursor {
            snapshot: snapshot.to_owned(),
            offset,
        })
    }
}

/// One ranked entry of a snapshot: a story, its score and why the reader gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub id: String,
    pub score: f64,
    pub reasons: Vec<String>,
}

impl Ranked {
    pub fn encode(&self) -> String {
        format!(
            "{}\t{:.5}\t{}",
            self.id,
            self.score,
            self.reasons.join("\u{1f}")
        )
    }

    pub fn decode(line: &str) -> Option<Self> {
        let mut p = line.splitn(3, '\t');
        Some(Ranked {
            id: p.next()?.to_owned(),
            score: p.next()?.parse().ok()?,
            reasons: p
                .next()
                .unwrap_or_default()
                .split('\u{1f}')
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// A new snapshot id: 16 hex digits, random per process and time.
pub fn new_id() -> String {
    crate::store::changes::token()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            snapshot: "00ff".into(),
            offset: 20,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("garbage"), None);
        assert_eq!(Cursor::decode("zz.3"), None);
    }

    #[test]
    fn ranked_entries_round_trip() {
        let r = Ranked {
            id: "s1".into(),
            score: 0.5,
            reasons: vec!["You follow Sport".into(), "Trending now".into()],
        };
        assert_eq!(Ranked::decode(&r.encode()), Some(r));
    }
}
