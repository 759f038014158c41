//! The 17 top-level IPTC Media Topics: the topic vocabulary of the contract.
//!
//! Follow targets, `TopicScore.code` and audiences all use these codes (`medtop:13000000`).
//! Source: IPTC Media Topics NewsCodes (<https://cv.iptc.org/newscodes/mediatopic/>).

/// (code, English label) of each top-level Media Topic.
pub const TOP_LEVEL: &[(&str, &str)] = &[
    ("medtop:01000000", "arts, culture, entertainment and media"),
    ("medtop:02000000", "crime, law and justice"),
    (
        "medtop:03000000",
        "disaster, accident and emergency incident",
    ),
    ("medtop:04000000", "economy, business and finance"),
    ("medtop:05000000", "education"),
    ("medtop:06000000", "environment"),
    ("medtop:07000000", "health"),
    ("medtop:08000000", "human interest"),
    ("medtop:09000000", "labour"),
    ("medtop:10000000", "lifestyle and leisure"),
    ("medtop:11000000", "politics"),
    ("medtop:12000000", "religion"),
    ("medtop:13000000", "science and technology"),
    ("medtop:14000000", "society"),
    ("medtop:15000000", "sport"),
    ("medtop:16000000", "conflict, war and peace"),
    ("medtop:17000000", "weather"),
];

/// The label of a top-level topic code.
pub fn label(code: &str) -> Option<&'static str> {
    TOP_LEVEL.iter().find(|(c, _)| *c == code).map(|(_, l)| *l)
}

/// Whether `code` has the shape of a Media Topic code (`medtop:` and eight digits).
pub fn is_code(code: &str) -> bool {
    code.strip_prefix("medtop:")
        .is_some_and(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
}
