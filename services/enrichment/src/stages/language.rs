//! `type = "language"`: the story's language as a BCP 47 tag.
//!
//! The source's own tag when it sent one; else detected with whatlang (maintained, pure Rust,
//! trigram-based, 69 languages). "und" when the text is too short or ambiguous to tell.

use std::sync::Arc;

use newsroom_proto::v1::{Enrichment, Story};
use serde::Deserialize;

use super::{BuildContext, BuildError, StageParams};
use crate::stage::{DynStage, Fields, Stage, StageError, StageInput, StageOutput};

/// Params of the `language` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageConfig {
    /// Trust the language the source sent, when it sent one. Default `true`.
    #[serde(default = "yes")]
    pub trust_source: bool,
}

fn yes() -> bool {
    true
}

impl StageParams for LanguageConfig {
    fn build(&self, _name: &str, _cx: &BuildContext) -> Result<DynStage, BuildError> {
        Ok(Arc::new(Language {
            trust_source: self.trust_source,
        }))
    }
}

struct Language {
    trust_source: bool,
}

#[async_trait::async_trait]
impl Stage for Language {
    fn writes(&self) -> Fields {
        Fields::LANGUAGE
    }

    async fn run(&self, input: &StageInput<'_>) -> Result<StageOutput, StageError> {
        // Six hundred characters tell a language as well as a whole story, in a fraction of
        // the time.
        let text = match input.text.full.char_indices().nth(600) {
            Some((end, _)) => &input.text.full[..end],
            None => input.text.full.as_str(),
        };
        Ok(Enrichment {
            language: detect(input.story, text, self.trust_source),
            ..Default::default()
        }
        .into())
    }
}

/// The story's language as a BCP 47 tag.
pub fn detect(story: &Story, text: &str, trust_source: bool) -> String {
    if trust_source && !story.language.trim().is_empty() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn story(headline: &str, body: &str) -> Story {
        Story {
            headline: headline.into(),
            body_html: body.into(),
            ..Default::default()
        }
    }

    fn lang(s: &Story) -> String {
        detect(s, &crate::text::story_text(s), true)
    }

    #[test]
    fn detects_english_and_german_and_admits_when_unsure() {
        let en = story(
            "Parliament votes on the budget",
            "<p>The government said on Tuesday that the new budget would be voted on next week by members of parliament.</p>",
        );
        assert_eq!(lang(&en), "en");
        assert_eq!(lang(&story("Ok", "<p>x</p>")), "und");
        let de = story(
            "Bundestag stimmt über den Haushalt ab",
            "<p>Die Regierung teilte am Dienstag mit, dass der neue Haushalt in der kommenden Woche vom Parlament beschlossen werden soll.</p>",
        );
        assert_eq!(lang(&de), "de");
    }

    #[test]
    fn the_sources_tag_wins_unless_told_otherwise() {
        let mut s = story(
            "Parliament votes on the budget",
            "<p>The government said on Tuesday that the new budget would be voted on next week.</p>",
        );
        s.language = "en-GB".into();
        assert_eq!(lang(&s), "en-GB");
        assert_eq!(detect(&s, &crate::text::story_text(&s), false), "en");
    }
}
