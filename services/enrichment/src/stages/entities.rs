//! `type = "entities"`: people, organisations, places and events with salience and mentions
//! (the rules are in [`crate::entities`]).

use std::sync::Arc;

use newsroom_proto::v1::Enrichment;
use serde::Deserialize;

use super::check_range;
use crate::entities::Extractor;
use crate::stage::{DynStage, Fields, Stage, StageError, StageInput, StageOutput};

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

impl EntitiesConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_range("max_entities", self.max_entities, 1, 200)
    }

    pub fn build(&self) -> DynStage {
        Arc::new(Entities {
            max: self.max_entities,
        })
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
