//! The example remote stage: readability, served as `newsroom.v1.EnrichmentStage`.
//!
//! It shows what a plug-in stage written outside the pipeline looks like (in Rust here; any
//! language with gRPC works): read the story and what earlier stages found, answer with only
//! what it adds. This one scores the Flesch reading ease of the body and files it under
//! `attributes["readability.flesch"]` and `attributes["readability.level"]`. A story without
//! text is INVALID_ARGUMENT, which the pipeline treats as "this story, never". Run it with
//! `newsroom-example-stage` (`NEWSROOM_STAGE_ADDR`, default 127.0.0.1:50062) and plug it in:
//!
//! ```toml
//! [[stage]]
//! name = "readability"
//! type = "grpc"
//! timeout_ms = 300
//! params = { endpoint = "http://127.0.0.1:50062", reads = [], writes = ["attributes"] }
//! ```

use newsroom_proto::v1::enrichment_stage_server::{EnrichmentStage, EnrichmentStageServer};
use newsroom_proto::v1::{EnrichRequest, EnrichResponse, Enrichment};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::text::{self, StoryText};

/// The readability stage.
#[derive(Debug, Default, Clone)]
pub struct Readability;

/// Flesch reading ease of a text (higher is easier; 60–70 is plain English), or `None` for
/// text without words.
pub fn flesch(text: &StoryText) -> Option<f64> {
    let mut sentences = 0usize;
    let mut words = 0usize;
    let mut syllables = 0usize;
    for p in &text.paragraphs {
        for s in text::sentences(p) {
            sentences += 1;
            for w in text::words(s) {
                words += 1;
                syllables += count_syllables(&w);
            }
        }
    }
    (words > 0 && sentences > 0).then(|| {
        206.835
            - 1.015 * (words as f64 / sentences as f64)
            - 84.6 * (syllables as f64 / words as f64)
    })
}

/// Vowel groups, a silent final "e" dropped; at least one.
fn count_syllables(word: &str) -> usize {
    let w = word.trim_end_matches('e');
    let mut n = 0;
    let mut prev_vowel = false;
    for c in w.chars() {
        let vowel = matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y');
        if vowel && !prev_vowel {
            n += 1;
        }
        prev_vowel = vowel;
    }
    n.max(1)
}

#[tonic::async_trait]
impl EnrichmentStage for Readability {
    async fn enrich(
        &self,
        request: Request<EnrichRequest>,
    ) -> Result<Response<EnrichResponse>, Status> {
        let story = request
            .into_inner()
            .story
            .ok_or_else(|| Status::invalid_argument("story: required"))?;
        let text = StoryText::new(&story);
        let score = flesch(&text)
            .ok_or_else(|| Status::invalid_argument("story.body_html: no text to score"))?;
        let level = match score {
            s if s >= 70.0 => "easy",
            s if s >= 50.0 => "standard",
            _ => "difficult",
        };
        let mut enrichment = Enrichment::default();
        enrichment
            .attributes
            .insert("readability.flesch".into(), format!("{score:.1}"));
        enrichment
            .attributes
            .insert("readability.level".into(), level.into());
        tracing::debug!(story.id = %story.id, score, "readability scored");
        Ok(Response::new(EnrichResponse {
            enrichment: Some(enrichment),
        }))
    }
}

/// Serves a stage on `listener` until `shutdown` resolves. Each call is a server span that
/// continues the caller's trace (the pipeline sends `traceparent`).
pub async fn serve<S: EnrichmentStage>(
    stage: S,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .trace_fn(|req| {
            let span = tracing::info_span!(
                "grpc",
                otel.name = %req.uri().path().trim_start_matches('/'),
                otel.kind = "server",
                rpc.system = "grpc",
            );
            let _ = span.set_parent(newsroom_platform::telemetry::extract_http(req.headers()));
            span
        })
        .add_service(EnrichmentStageServer::new(stage))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use newsroom_proto::v1::Story;

    fn text(body: &str) -> StoryText {
        StoryText::new(&Story {
            body_html: body.into(),
            ..Default::default()
        })
    }

    #[test]
    fn plain_copy_reads_easier_than_jargon() {
        let plain = flesch(&text(
            "<p>The cat sat on the mat. It was a good day. We all went home.</p>",
        ))
        .unwrap();
        let dense = flesch(&text("<p>Macroeconomic considerations notwithstanding, institutional investors anticipated considerable quantitative tightening.</p>")).unwrap();
        assert!(plain > 80.0 && dense < 20.0, "{plain} {dense}");
        assert!(flesch(&text("")).is_none());
    }
}
