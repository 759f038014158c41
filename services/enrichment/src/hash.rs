//! A stable 64-bit hash, FNV-1a.
//!
//! The held-out split of the BBC set, duplicate signatures and their LSH keys in Redis must hash
//! the same in every process and after every Rust upgrade; std's `DefaultHasher` promises
//! neither (random keys, unspecified algorithm).

/// 64-bit FNV-1a of `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
