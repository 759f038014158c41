//! A reader's alert preferences, and the per-device filter they make.
//!
//! Preferences live on each `Device` (durable on the compacted `devices` topic with it). A
//! device without preferences has the defaults: alerts on, no quiet hours, no daily limit, any
//! language. [`judge`] decides, for one device and one alert, whether the device is in the
//! alert's audience and, if so, whether a filter suppresses it and why (a [`Suppression`]):
//!
//! - `opted_out` — breaking alerts switched off;
//! - `language` — the story is in a language the reader did not choose;
//! - `quiet_hours` — now is inside the device's quiet hours, in its own time zone;
//! - `budget` — the device had its maximum alerts today (decided in Redis, see `store`).
//!
//! A critical alert passes quiet hours and budgets, never an opt-out.

use chrono::{DateTime, NaiveTime, Timelike as _, Utc};
use chrono_tz::Tz;
use newsroom_proto::v1::{Device, Preferences};
use prost_types::FieldMask;

use crate::suppression::Suppression;

/// The preferences of a device that never set any.
pub fn defaults() -> Preferences {
    Preferences {
        breaking_alerts: true,
        ..Default::default()
    }
}

/// The fields an update mask may name.
const FIELDS: [&str; 8] = [
    "breaking_alerts",
    "topics",
    "entities",
    "quiet_start",
    "quiet_end",
    "max_alerts_per_day",
    "language",
    "briefing_time",
];

fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").ok()
}

/// Checks and normalises preferences; the error names the field under `at`.
pub fn validate(mut p: Preferences, at: &str) -> Result<Preferences, String> {
    p.quiet_start = p.quiet_start.trim().to_owned();
    p.quiet_end = p.quiet_end.trim().to_owned();
    match (p.quiet_start.is_empty(), p.quiet_end.is_empty()) {
        (true, true) => {}
        (false, false) => {
            for (name, v) in [("quiet_start", &p.quiet_start), ("quiet_end", &p.quiet_end)] {
                if parse_hhmm(v).is_none() {
                    return Err(format!("{at}.{name}: expected HH:MM (24 h), got {v:?}"));
                }
            }
        }
        _ => {
            return Err(format!(
                "{at}.quiet_start: quiet hours need both quiet_start and quiet_end"
            ));
        }
    }
    p.briefing_time = p.briefing_time.trim().to_owned();
    if !p.briefing_time.is_empty() && parse_hhmm(&p.briefing_time).is_none() {
        return Err(format!(
            "{at}.briefing_time: expected HH:MM (24 h), got {:?}",
            p.briefing_time
        ));
    }
    if p.max_alerts_per_day > 1000 {
        return Err(format!(
            "{at}.max_alerts_per_day: at most 1000 (0 = no limit)"
        ));
    }
    p.language = p.language.trim().to_owned();
    if !p.language.is_empty() && !is_language_tag(&p.language) {
        return Err(format!(
            "{at}.language: a BCP 47 tag such as \"en\" or \"pt-BR\""
        ));
    }
    for (name, list) in [("topics", &mut p.topics), ("entities", &mut p.entities)] {
        if list.len() > 200 {
            return Err(format!("{at}.{name}: at most 200"));
        }
        for v in list.iter_mut() {
            *v = v.trim().to_owned();
            if v.is_empty() || v.len() > 200 {
                return Err(format!("{at}.{name}: entries are 1 to 200 bytes"));
            }
        }
        list.sort();
        list.dedup();
    }
    Ok(p)
}

fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()))
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Applies an update to the current preferences: the fields in `mask`, or all of them.
pub fn merge(
    current: Option<&Preferences>,
    update: &Preferences,
    mask: Option<&FieldMask>,
) -> Result<Preferences, String> {
    let Some(mask) = mask.filter(|m| !m.paths.is_empty()) else {
        return Ok(update.clone());
    };
    let mut p = current.cloned().unwrap_or_else(defaults);
    for path in &mask.paths {
        match path.as_str() {
            "breaking_alerts" => p.breaking_alerts = update.breaking_alerts,
            "topics" => p.topics.clone_from(&update.topics),
            "entities" => p.entities.clone_from(&update.entities),
            "quiet_start" => p.quiet_start.clone_from(&update.quiet_start),
            "quiet_end" => p.quiet_end.clone_from(&update.quiet_end),
            "max_alerts_per_day" => p.max_alerts_per_day = update.max_alerts_per_day,
            "language" => p.language.clone_from(&update.language),
            "briefing_time" => p.briefing_time.clone_from(&update.briefing_time),
            other => {
                return Err(format!(
                    "update_mask: unknown field {other:?}; one of {}",
                    FIELDS.join(", ")
                ));
            }
        }
    }
    Ok(p)
}

/// The device's time zone (UTC when it has none, or an unknown one).
pub fn time_zone(device: &Device) -> Tz {
    device.timezone.parse().unwrap_or(Tz::UTC)
}

/// Whether an IANA time zone name is known.
pub fn is_time_zone(name: &str) -> bool {
    name.parse::<Tz>().is_ok()
}

/// The device's current day, `YYYY-MM-DD` in its own time zone: the key of its daily budget.
pub fn local_day(device: &Device, now: DateTime<Utc>) -> String {
    now.with_timezone(&time_zone(device))
        .format("%Y-%m-%d")
        .to_string()
}

/// Whether `now` is inside the quiet hours (in the device's time zone).
pub fn in_quiet_hours(device: &Device, prefs: &Preferences, now: DateTime<Utc>) -> bool {
    let (Some(start), Some(end)) = (parse_hhmm(&prefs.quiet_start), parse_hhmm(&prefs.quiet_end))
    else {
        return false;
    };
    let local = now.with_timezone(&time_zone(device));
    let t = NaiveTime::from_hms_opt(local.hour(), local.minute(), local.second())
        .unwrap_or(NaiveTime::MIN);
    match start.cmp(&end) {
        std::cmp::Ordering::Equal => false,
        // 13:00–14:00
        std::cmp::Ordering::Less => start <= t && t < end,
        // 22:00–07:00, across midnight
        std::cmp::Ordering::Greater => t >= start || t < end,
    }
}

/// The first instant strictly after `after` at which it is `prefs.briefing_time` in the
/// device's time zone (`None`: no briefing). On a day whose clocks skip that time (a DST
/// gap), the first instant after the gap.
pub fn next_briefing(
    device: &Device,
    prefs: &Preferences,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    use chrono::TimeZone as _;
    let at = parse_hhmm(&prefs.briefing_time)?;
    let tz = time_zone(device);
    let today = after.with_timezone(&tz).date_naive();
    (0..=2)
        .filter_map(|d| today.checked_add_days(chrono::Days::new(d)))
        .filter_map(|day| {
            let local = day.and_time(at);
            tz.from_local_datetime(&local)
                .earliest()
                // A DST gap: the time does not exist that day; an hour later does.
                .or_else(|| {
                    tz.from_local_datetime(&(local + chrono::Duration::hours(1)))
                        .earliest()
                })
        })
        .map(|t| t.with_timezone(&Utc))
        .find(|t| *t > after)
}

/// Whether the story is in the language the reader chose (the preference, else the device's),
/// or either is unknown. Shared by alerts and briefings.
pub fn reads_language_of(device: &Device, prefs: &Preferences, story: &StoryFacts) -> bool {
    let wanted = if prefs.language.is_empty() {
        &device.language
    } else {
        &prefs.language
    };
    match &story.language {
        Some(lang) if !wanted.is_empty() && !lang.is_empty() => primary(wanted) == primary(lang),
        _ => true,
    }
}

/// What an alert is about, for the filters.
#[derive(Debug, Clone, Default)]
pub struct StoryFacts {
    pub topics: Vec<String>,
    /// Lower-cased entity names.
    pub entities: Vec<String>,
    /// The story's language, when known.
    pub language: Option<String>,
    /// Its developing story (near-duplicate cluster), whose followers it reaches too.
    pub cluster: Option<String>,
}

/// Whom an alert is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The followers of the story's topics and entities: a device that chose its own alert
    /// topics or entities is in only if the story has one of them.
    Followers,
    /// Everyone, or a segment: the editor chose the audience.
    Chosen,
}

/// The verdict on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not in the audience at all: not counted.
    Outside,
    /// In the audience, not sent, for this reason.
    Suppress(Suppression),
    /// Send, subject to the daily budget (0 = none).
    Send { budget: u32 },
}

fn primary(lang: &str) -> String {
    lang.split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Judges one device for one alert.
pub fn judge(
    device: &Device,
    story: &StoryFacts,
    reach: Reach,
    critical: bool,
    now: DateTime<Utc>,
) -> Verdict {
    let default = defaults();
    let prefs = device.preferences.as_ref().unwrap_or(&default);
    if reach == Reach::Followers && (!prefs.topics.is_empty() || !prefs.entities.is_empty()) {
        let topic = prefs.topics.iter().any(|t| story.topics.contains(t));
        let entity = prefs
            .entities
            .iter()
            .any(|e| story.entities.contains(&e.to_lowercase()));
        if !topic && !entity {
            return Verdict::Outside;
        }
    }
    if !prefs.breaking_alerts {
        return Verdict::Suppress(Suppression::OptedOut);
    }
    if !reads_language_of(device, prefs, story) {
        return Verdict::Suppress(Suppression::Language);
    }
    if critical {
        return Verdict::Send { budget: 0 };
    }
    if in_quiet_hours(device, prefs, now) {
        return Verdict::Suppress(Suppression::QuietHours);
    }
    Verdict::Send {
        budget: prefs.max_alerts_per_day,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn device(tz: &str, prefs: Preferences) -> Device {
        Device {
            device_id: "d".into(),
            timezone: tz.into(),
            preferences: Some(prefs),
            ..Default::default()
        }
    }

    fn quiet(start: &str, end: &str) -> Preferences {
        Preferences {
            breaking_alerts: true,
            quiet_start: start.into(),
            quiet_end: end.into(),
            ..Default::default()
        }
    }

    fn utc(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, h, m, 0).unwrap()
    }

    #[test]
    fn a_briefing_at_seven_is_seven_in_each_devices_own_time_zone() {
        let prefs = Preferences {
            briefing_time: "07:00".into(),
            ..Default::default()
        };
        let next = |tz: &str, after: DateTime<Utc>| {
            next_briefing(&device(tz, prefs.clone()), &prefs, after)
        };
        // 15 January, 12:00 UTC: Tokyo (UTC+9) is at 21:00, so its next 07:00 is 22:00 UTC;
        // New York (UTC-5) is at 07:00 exactly, so its next one is tomorrow's.
        assert_eq!(next("Asia/Tokyo", utc(12, 0)), Some(utc(22, 0)));
        assert_eq!(
            next("America/New_York", utc(12, 0)),
            Some(utc(12, 0) + chrono::Duration::days(1))
        );
        assert_eq!(next("America/New_York", utc(11, 59)), Some(utc(12, 0)));
        // Across the spring DST change (New York, 8 March 2026): 07:00 is 11:00 UTC after it.
        let before = Utc.with_ymd_and_hms(2026, 3, 7, 13, 0, 0).unwrap();
        assert_eq!(
            next("America/New_York", before),
            Some(Utc.with_ymd_and_hms(2026, 3, 8, 11, 0, 0).unwrap())
        );
        // A time the clocks skip (02:30 on 8 March in New York) is taken after the gap.
        let gap = Preferences {
            briefing_time: "02:30".into(),
            ..Default::default()
        };
        assert_eq!(
            next_briefing(&device("America/New_York", gap.clone()), &gap, before),
            Some(Utc.with_ymd_and_hms(2026, 3, 8, 7, 30, 0).unwrap())
        );
        assert_eq!(
            next_briefing(
                &device("UTC", Preferences::default()),
                &Preferences::default(),
                before
            ),
            None
        );
        let bad = validate(
            Preferences {
                briefing_time: "7am".into(),
                ..Default::default()
            },
            "preferences",
        )
        .unwrap_err();
        assert!(bad.contains("preferences.briefing_time"), "{bad}");
    }

    #[test]
    fn quiet_hours_are_in_the_devices_own_time_zone_and_may_cross_midnight() {
        let story = StoryFacts::default();
        // 22:00–07:00 in Tokyo (UTC+9): 23:30 UTC is 08:30 there — awake; 14:00 UTC is 23:00.
        let tokyo = device("Asia/Tokyo", quiet("22:00", "07:00"));
        assert_eq!(
            judge(&tokyo, &story, Reach::Followers, false, utc(23, 30)),
            Verdict::Send { budget: 0 }
        );
        assert_eq!(
            judge(&tokyo, &story, Reach::Followers, false, utc(14, 0)),
            Verdict::Suppress(Suppression::QuietHours)
        );
        // The same hours in New York (UTC-5 in January): 03:00 UTC is 22:00 there.
        let ny = device("America/New_York", quiet("22:00", "07:00"));
        assert_eq!(
            judge(&ny, &story, Reach::Followers, false, utc(3, 0)),
            Verdict::Suppress(Suppression::QuietHours)
        );
        assert!(!in_quiet_hours(&ny, &quiet("22:00", "07:00"), utc(12, 0)));
        // A daytime window, and the critical override.
        let lunch = device("Europe/London", quiet("12:00", "13:00"));
        assert!(in_quiet_hours(
            &lunch,
            &quiet("12:00", "13:00"),
            utc(12, 30)
        ));
        assert!(!in_quiet_hours(
            &lunch,
            &quiet("12:00", "13:00"),
            utc(13, 0)
        ));
        assert_eq!(
            judge(&tokyo, &story, Reach::Followers, true, utc(14, 0)),
            Verdict::Send { budget: 0 }
        );
    }

    #[test]
    fn opt_out_language_and_chosen_topics_filter_devices() {
        let story = StoryFacts {
            topics: vec!["medtop:13000000".into()],
            entities: vec!["nasa".into()],
            language: Some("en".into()),
            cluster: None,
        };
        let off = device("", Preferences::default());
        assert_eq!(
            judge(&off, &story, Reach::Followers, true, utc(12, 0)),
            Verdict::Suppress(Suppression::OptedOut)
        );
        let german = device(
            "Europe/Berlin",
            Preferences {
                breaking_alerts: true,
                language: "de".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            judge(&german, &story, Reach::Followers, false, utc(12, 0)),
            Verdict::Suppress(Suppression::Language)
        );
        let british = Device {
            language: "en-GB".into(),
            ..device("Europe/London", defaults())
        };
        assert!(matches!(
            judge(&british, &story, Reach::Followers, false, utc(12, 0)),
            Verdict::Send { .. }
        ));
        let politics_only = device(
            "",
            Preferences {
                breaking_alerts: true,
                topics: vec!["medtop:11000000".into()],
                max_alerts_per_day: 3,
                ..Default::default()
            },
        );
        assert_eq!(
            judge(&politics_only, &story, Reach::Followers, false, utc(12, 0)),
            Verdict::Outside
        );
        assert_eq!(
            judge(&politics_only, &story, Reach::Chosen, false, utc(12, 0)),
            Verdict::Send { budget: 3 }
        );
        let nasa_fan = device(
            "",
            Preferences {
                breaking_alerts: true,
                entities: vec!["NASA".into()],
                ..Default::default()
            },
        );
        assert!(matches!(
            judge(&nasa_fan, &story, Reach::Followers, false, utc(12, 0)),
            Verdict::Send { .. }
        ));
        let bare = Device::default();
        assert_eq!(
            judge(&bare, &story, Reach::Followers, false, utc(12, 0)),
            Verdict::Send { budget: 0 }
        );
    }

    #[test]
    fn the_budget_day_is_the_devices_local_day() {
        let tokyo = device("Asia/Tokyo", defaults());
        assert_eq!(local_day(&tokyo, utc(20, 0)), "2026-01-16");
        assert_eq!(local_day(&Device::default(), utc(20, 0)), "2026-01-15");
    }

    #[test]
    fn validation_names_the_field_and_a_mask_changes_only_its_fields() {
        let bad = |p: Preferences| validate(p, "preferences").unwrap_err();
        assert!(bad(quiet("25:00", "07:00")).contains("preferences.quiet_start"));
        assert!(bad(quiet("22:00", "")).contains("quiet_start"));
        assert!(
            bad(Preferences {
                language: "english!".into(),
                ..defaults()
            })
            .contains("preferences.language")
        );
        let current = Preferences {
            breaking_alerts: true,
            max_alerts_per_day: 5,
            ..quiet("22:00", "07:00")
        };
        let update = Preferences {
            max_alerts_per_day: 2,
            ..Default::default()
        };
        let mask = FieldMask {
            paths: vec!["max_alerts_per_day".into()],
        };
        let merged = merge(Some(&current), &update, Some(&mask)).unwrap();
        assert!(merged.breaking_alerts);
        assert_eq!(merged.quiet_start, "22:00");
        assert_eq!(merged.max_alerts_per_day, 2);
        let replaced = merge(Some(&current), &update, None).unwrap();
        assert!(!replaced.breaking_alerts);
        let bad_mask = FieldMask {
            paths: vec!["volume".into()],
        };
        assert!(
            merge(None, &update, Some(&bad_mask))
                .unwrap_err()
                .contains("volume")
        );
    }
}
