//! The enrichment of one story: language, counts, topics, breaking score.

use newsroom_proto::v1::{EnrichedStory, Enrichment, PubStatus, Story, StoryEvent};

use crate::{text, topics};

/// The built-in enrichment steps, in order. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pipeline {
    words_per_minute: u32,
}

/// Names of the steps, for `ListStages`.
pub const STAGES: &[&str] = &["language", "counts", "topics", "urgency"];

/// Wording that marks a story as breaking news.
const BREAKING_WORDS: &[&str] = &["breaking", "flash", "urgent", "just in", "alert"];

impl Pipeline {
    pub fn new(words_per_minute: u32) -> Self {
        Pipeline { words_per_minute }
    }

    /// Enriches a `stories.raw` event into a `stories.enriched` record.
    pub fn enrich_event(&self, event: StoryEvent) -> EnrichedStory {
        let story = event.story.unwrap_or_default();
        EnrichedStory {
            enrichment: Some(self.enrich(&story)),
            story: Some(story),
            accepted_at: event.accepted_at,
        }
    }

    /// What the pipeline finds in one story.
    pub fn enrich(&self, story: &Story) -> Enrichment {
        let text = text::story_text(story);
        let word_count = text::words(&text).count() as u32;
        let reading_time_seconds = if word_count == 0 {
            0
        } else {
            (u64::from(word_count) * 60).div_ceil(u64::from(self.words_per_minute)) as u32
        };
        let body_text = text::html_to_text(&story.body_html);
        Enrichment {
            language: detect_language(story, &text),
            topics: topics::classify(&story.headline, &body_text),
            word_count,
            reading_time_seconds,
            breaking_score: breaking_score(story),
            ..Default::default()
        }
    }
}

/// The story's language as a BCP 47 tag: what the source said when it said so, else detected.
fn detect_language(story: &Story, text: &str) -> String {
    if !story.language.trim().is_empty() {
        return story.language.trim().to_owned();
    }
    // whatlang's own "reliable" flag is strict on short copy; a confident guess on a headline
    // and a lead is right far more often than "und" would be useful.
    match whatlang::detect(text) {
        Some(info) if info.is_reliable() || info.confidence() >= 0.3 || text.len() > 200 => {
            bcp47(info.lang()).unwrap_or_else(|| info.lang().code().to_owned())
        }
        _ => "und".to_owned(),
    }
}

/// ISO 639-1 where it exists (BCP 47 prefers the shortest code), from whatlang's ISO 639-3.
fn bcp47(lang: whatlang::Lang) -> Option<String> {
    use whatlang::Lang::*;
    let code = match lang {
        Eng => "en",
        Deu => "de",
        Fra => "fr",
        Spa => "es",
        Ita => "it",
        Por => "pt",
        Nld => "nl",
        Rus => "ru",
        Ukr => "uk",
        Pol => "pl",
        Cmn => "zh",
        Jpn => "ja",
        Kor => "ko",
        Ara => "ar",
        Tur => "tr",
        Swe => "sv",
        Dan => "da",
        Nob => "nb",
        Fin => "fi",
        Ces => "cs",
        Ell => "el",
        Heb => "he",
        Hin => "hi",
        Hun => "hu",
        Ron => "ro",
        Vie => "vi",
        Ind => "id",
        Tha => "th",
        Cat => "ca",
        _ => return None,
    };
    Some(code.to_owned())
}

/// 0..1 from the source's urgency (1 = flash → 1.0) and breaking wording in the headline.
fn breaking_score(story: &Story) -> f64 {
    if story.pubstatus == PubStatus::Canceled as i32 {
        return 0.0;
    }
    let urgency = match story.urgency {
        0 => 5,
        u => u,
    };
    let from_urgency = f64::from(9 - urgency.min(8)) / 8.0;
    let headline = story.headline.to_lowercase();
    let wording = if BREAKING_WORDS.iter().any(|w| headline.contains(w)) {
        0.2
    } else {
        0.0
    };
    (from_urgency + wording).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn story(headline: &str, body: &str, urgency: u32) -> Story {
        Story {
            id: "s1".into(),
            headline: headline.into(),
            body_html: body.into(),
            urgency,
            ..Default::default()
        }
    }

    #[test]
    fn counts_words_and_reading_time() {
        let body = format!("<p>{}</p>", "word ".repeat(459));
        let e = Pipeline::new(230).enrich(&story("One", &body, 5));
        assert_eq!(e.word_count, 460);
        assert_eq!(e.reading_time_seconds, 120);
    }

    #[test]
    fn detects_english_and_german() {
        let p = Pipeline::new(230);
        let en = p.enrich(&story(
            "Parliament votes on the budget",
            "<p>The government said on Tuesday that the new budget would be voted on next week by members of parliament.</p>",
            5,
        ));
        assert_eq!(en.language, "en");
        let unsure = p.enrich(&story("Ok", "<p>x</p>", 5));
        assert_eq!(unsure.language, "und");
        let de = p.enrich(&story(
            "Bundestag stimmt über den Haushalt ab",
            "<p>Die Regierung teilte am Dienstag mit, dass der neue Haushalt in der kommenden Woche vom Parlament beschlossen werden soll.</p>",
            5,
        ));
        assert_eq!(de.language, "de");
    }

    #[test]
    fn flash_urgency_scores_higher_than_routine() {
        let p = Pipeline::new(230);
        let flash = p.enrich(&story("Quake", "<p>x</p>", 1)).breaking_score;
        let routine = p.enrich(&story("Quake", "<p>x</p>", 6)).breaking_score;
        assert!(flash > 0.9 && routine < 0.5, "{flash} {routine}");
    }
}
