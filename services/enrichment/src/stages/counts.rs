//! `type = "counts"`: word count and reading time.

use std::sync::Arc;

use newsroom_proto::v1::Enrichment;
use serde::Deserialize;

use super::{BuildContext, BuildError, StageParams, check_range};
use crate::stage::{DynStage, Fields, Stage, StageError, StageInput, StageOutput};

/// Params of the `counts` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountsConfig {
    /// Reading speed for `reading_time_seconds`, in words per minute. Default:
    /// `NEWSROOM_WORDS_PER_MINUTE` (230).
    pub words_per_minute: Option<u32>,
}

impl StageParams for CountsConfig {
    fn validate(&self) -> Result<(), String> {
        match self.words_per_minute {
            Some(w) => check_range("words_per_minute", w, 50, 2000),
            None => Ok(()),
        }
    }

    fn build(&self, _name: &str, cx: &BuildContext) -> Result<DynStage, BuildError> {
        let wpm = self.words_per_minute.unwrap_or(cx.words_per_minute);
        Ok(Arc::new(Counts {
            words_per_minute: if wpm == 0 { 230 } else { wpm },
        }))
    }
}

struct Counts {
    words_per_minute: u32,
}

#[async_trait::async_trait]
impl Stage for Counts {
    fn writes(&self) -> Fields {
        Fields::COUNTS
    }

    async fn run(&self, input: &StageInput<'_>) -> Result<StageOutput, StageError> {
        let (word_count, reading_time_seconds) = counts(&input.text.full, self.words_per_minute);
        Ok(Enrichment {
            word_count,
            reading_time_seconds,
            ..Default::default()
        }
        .into())
    }
}

/// Words of the text and the seconds it takes to read them (rounded up).
pub fn counts(text: &str, words_per_minute: u32) -> (u32, u32) {
    let words = crate::text::words(text).count() as u32;
    let seconds = if words == 0 {
        0
    } else {
        (u64::from(words) * 60).div_ceil(u64::from(words_per_minute.max(1))) as u32
    };
    (words, seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words_and_reading_time() {
        let text = format!("One.\n{}", "word ".repeat(459));
        assert_eq!(counts(&text, 230), (460, 120));
        assert_eq!(counts("", 230), (0, 0));
    }

    #[test]
    fn a_reading_speed_out_of_range_is_rejected() {
        let c = CountsConfig {
            words_per_minute: Some(5),
        };
        assert!(c.validate().unwrap_err().contains("words_per_minute"));
    }
}
