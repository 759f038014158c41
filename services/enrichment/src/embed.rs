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
        let tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?)
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
