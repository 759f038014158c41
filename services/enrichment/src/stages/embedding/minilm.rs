//! all-MiniLM-L6-v2 in pure Rust with candle (cargo feature `embedding`).
//!
//! A 6-layer BERT (hidden size 384, 12 heads, ~22.7 M parameters) from the
//! sentence-transformers project: the story's tokens go through the encoder, the token vectors
//! are averaged over the attention mask (the model's own pooling) and L2-normalised, so a dot
//! product of two embeddings is their cosine similarity. Weights are read from
//! `model.safetensors` into memory (safe code only: no memory map), the tokenizer from
//! `tokenizer.json` (Hugging Face `tokenizers`), the shape from `config.json`.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::Tokenizer;

/// Why the model could not load or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{file}: {error}")]
    File { file: String, error: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
}

/// The loaded model.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    max_tokens: usize,
    config: Config,
}

impl MiniLm {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from `dir`.
    pub fn load(dir: &Path, max_tokens: usize) -> Result<MiniLm, EmbedError> {
        let read = |name: &str| {
            std::fs::read(dir.join(name)).map_err(|e| EmbedError::File {
                file: dir.join(name).display().to_string(),
                error: e.to_string(),
            })
        };
        let config: Config =
            serde_json::from_slice(&read("config.json")?).map_err(|e| EmbedError::File {
                file: "config.json".into(),
                error: e.to_string(),
            })?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        // The shipped tokenizer pads every text to 128 tokens; padding would then be averaged
        // into the embedding (and cost compute). One text at a time needs neither padding nor
        // the tokenizer's truncation: `tokens` truncates to `max_tokens` itself.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let device = Device::Cpu;
        let vb =
            VarBuilder::from_buffered_safetensors(read("model.safetensors")?, DType::F32, &device)?;
        let model = BertModel::load(vb, &config)?;
        Ok(MiniLm {
            model,
            tokenizer,
            device,
            max_tokens,
            config,
        })
    }

    /// Token ids of a text, truncated to `max_tokens` (with [CLS] and [SEP]).
    pub fn tokens(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let mut ids = encoding.get_ids().to_vec();
        if ids.len() > self.max_tokens {
            let sep = *ids.last().unwrap_or(&102);
            ids.truncate(self.max_tokens - 1);
            ids.push(sep);
        }
        Ok(ids)
    }

    /// Dimensions of an embedding (384).
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// The normalised embedding of a text.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let ids = self.tokens(text)?;
        let n = ids.len();
        let input = Tensor::from_vec(ids, (1, n), &self.device)?;
        let types = input.zeros_like()?;
        let mask = input.ones_like()?;
        let hidden = self.model.forward(&input, &types, Some(&mask))?; // (1, n, 384)
        // Mean over tokens (every token is real here: one text, no padding), then L2.
        let pooled = (hidden.sum(1)? / n as f64)?;
        let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?;
        let unit = pooled.broadcast_div(&norm)?;
        Ok(unit.squeeze(0)?.to_vec1::<f32>()?)
    }

    /// Floating-point operations of one forward pass over `n` tokens (multiply-add = 2):
    /// per layer the Q, K, V and output projections (4·n·h²), the feed-forward (2·n·h·i), and
    /// attention scores and weighted sum (2·n²·h); times 2 for multiply-adds.
    pub fn flops(&self, n: usize) -> f64 {
        let (h, i, l) = (
            self.config.hidden_size as f64,
            self.config.intermediate_size as f64,
            self.config.num_hidden_layers as f64,
        );
        let n = n as f64;
        2.0 * l * (4.0 * n * h * h + 2.0 * n * h * i + 2.0 * n * n * h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the model (`just enrichment-model`); only built with `--features embedding`.
    fn model() -> MiniLm {
        let dir = crate::config::model_dir();
        MiniLm::load(&dir, 128)
            .unwrap_or_else(|e| panic!("the model is missing ({e}): run `just enrichment-model`"))
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn similar_stories_are_close_and_unrelated_ones_are_not() {
        let m = model();
        let a = m
            .embed("Floods force hundreds from their homes in northern England")
            .unwrap();
        let b = m
            .embed("Hundreds evacuated as rivers burst their banks in the north of England")
            .unwrap();
        let c = m
            .embed("Central bank leaves interest rates unchanged")
            .unwrap();
        assert_eq!(a.len(), 384);
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-4, "unit length");
        assert!(
            cosine(&a, &b) > cosine(&a, &c) + 0.2,
            "{} {}",
            cosine(&a, &b),
            cosine(&a, &c)
        );
        let long = "word ".repeat(1000);
        assert_eq!(
            m.tokens(&long).unwrap().len(),
            128,
            "truncated to max_tokens"
        );
        assert!(
            (m.flops(128) / 1e9 - 2.9).abs() < 0.3,
            "{}",
            m.flops(128) / 1e9
        );
    }
}
