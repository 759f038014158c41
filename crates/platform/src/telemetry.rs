//! Logs and traces.
//!
//! [`init`] installs a `tracing` subscriber (text or JSON logs) with an OpenTelemetry layer, and
//! sets the W3C trace-context propagator globally so the gRPC edge and the Kafka headers carry
//! `traceparent`. A tracer provider is always installed, so trace ids exist and propagate even
//! without a collector; spans are exported over OTLP/gRPC only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set. The returned [`TelemetryGuard`] flushes and shuts the
//! provider down when dropped, after the service has drained.
//!
//! Every log line written inside a span carries that span's `trace_id` and `span_id` (text:
//! ` trace_id=… span_id=…` at the end of the line; JSON: two top-level fields), so an on-call
//! engineer can go from a log line to its trace in Jaeger and back. [`log_layer`] builds that
//! formatter; it is public so tests can point it at a buffer.

use std::io::IsTerminal as _;
use std::sync::{Arc, OnceLock};

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, PlatformConfig};

/// Shuts the tracer provider down (flushing spans) when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("telemetry shutdown: {e}");
        }
    }
}

/// Error setting up telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter: {0}")]
    Exporter(String),
}

/// Installs logging and tracing for the process. Call once, from `main`.
pub fn init(config: &PlatformConfig) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.otel_service_name.clone())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &config.otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer(config.service);

    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // `RUST_LOG` filters the log lines only. Spans go to the tracer at `info` and above
    // whatever the log level, so `RUST_LOG=warn` in production keeps its traces (a global
    // filter would disable the `info` spans and with them every trace).
    // `try_init` so that tests starting several services in one process do not panic.
    let _ = tracing_subscriber::registry()
        .with(log_layer(config.log_format, std::io::stdout, ansi).with_filter(filter))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        )
        .try_init();
    Ok(TelemetryGuard { provider })
}

/// The log formatter of [`init`]: text or JSON lines written to `writer`, each line inside a span
/// carrying the span's `trace_id` and `span_id`.
///
/// The ids are those of the OpenTelemetry span, so they need the `tracing_opentelemetry` layer
/// in the same subscriber; without it (or outside any span) lines are written unchanged.
pub fn log_layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // The formatter needs the subscriber it runs in to ask the OpenTelemetry layer for a span's
    // context. It cannot ask `tracing::dispatcher::get_default` while an event is being
    // dispatched (a nested call yields no dispatcher under a scoped default), so a tiny layer
    // beside it captures the dispatcher when the subscriber is built. Weak, because the
    // subscriber owns the formatter.
    let dispatch = Arc::new(OnceLock::new());
    let capture = CaptureDispatch(dispatch.clone());
    let base = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => base
            .with_ansi(ansi)
            .event_format(TraceIds {
                inner: format::Format::default().with_ansi(ansi),
                json: false,
                dispatch,
            })
            .and_then(capture)
            .boxed(),
        LogFormat::Json => base
            .with_ansi(false)
            .json()
            .event_format(TraceIds {
                inner: format::Format::default().json().flatten_event(true),
                json: true,
                dispatch,
            })
            .and_then(capture)
            .boxed(),
    }
}

/// Remembers the dispatcher the log layer was registered with.
struct CaptureDispatch(Arc<OnceLock<WeakDispatch>>);

impl<S: Subscriber> Layer<S> for CaptureDispatch {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.set(subscriber.downgrade());
    }
}

/// Wraps an event formatter and adds the trace and span ids of the event's span.
struct TraceIds<F> {
    inner: F,
    /// JSON lines get two fields; text lines get ` trace_id=… span_id=…` at the end.
    json: bool,
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl<F> TraceIds<F> {
    /// The (trace id, span id) of the OpenTelemetry span behind a `tracing` span, if sampled.
    fn ids(&self, id: &tracing::span::Id) -> Option<(String, String)> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(id, &dispatch)?;
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid()
            .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
    }
}

impl<S, N, F> FormatEvent<S, N> for TraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        // The event's span: its explicit parent, else the span the thread is in.
        let Some((trace_id, span_id)) = ctx.parent_span().and_then(|s| self.ids(&s.id())) else {
            return self.inner.format_event(ctx, writer, event);
        };
        // Format the line into a buffer, then add the ids where each format wants them. The
        // inner formatter's own ANSI setting (text) survives the buffer.
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let line = line.trim_end_matches('\n');
        if self.json
            && let Some(rest) = line.strip_prefix('{')
        {
            let sep = if rest.starts_with('}') { "" } else { "," };
            writeln!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"{sep}{rest}"
            )
        } else {
            writeln!(writer, "{line} trace_id={trace_id} span_id={span_id}")
        }
    }
}

/// Reads `traceparent` / `tracestate` from HTTP (gRPC metadata) headers.
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes `traceparent` / `tracestate` into tonic request metadata (for clients).
pub struct MetadataInjector<'a>(pub &'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// The OpenTelemetry context carried by the given headers.
pub fn extract_http(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Injects the current span's context into outgoing gRPC metadata.
pub fn inject_current(metadata: &mut tonic::metadata::MetadataMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut MetadataInjector(metadata))
    });
}

/// The current span as a W3C `traceparent`, to keep and link to later (see
/// [`link_current_to`]); `None` outside a sampled span.
pub fn current_traceparent() -> Option<String> {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.remove("traceparent")
}

/// Links the current span to the span a `traceparent` names — work caused by something in
/// another trace (an editor's alert about a story that came through earlier). Returns whether
/// the link was made (`false` for a malformed `traceparent`).
pub fn link_current_to(traceparent: &str) -> bool {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    let linked = cx.span().span_context().clone();
    if !linked.is_valid() {
        return false;
    }
    tracing::Span::current().add_link(linked);
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use super::*;

    /// A log sink the test can read back.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    impl Buf {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    #[test]
    fn log_lines_inside_a_span_carry_its_trace_and_span_ids_in_text_and_json() {
        let (text, json) = (Buf::default(), Buf::default());
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(log_layer(LogFormat::Text, text.clone(), false))
            .with(log_layer(LogFormat::Json, json.clone(), false))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));

        let (trace_id, span_id, child_span_id) =
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!("before any span");
                let span = tracing::info_span!("handle", story = "s1");
                let _entered = span.enter();
                tracing::info!(attempt = 1, "inside the span");
                let child = tracing::info_span!("stage");
                // An explicit parent counts, not only the span the thread is in.
                tracing::warn!(parent: &child, "in the child");
                let ids = |s: &tracing::Span| {
                    let cx = s.context();
                    let sc = cx.span().span_context().clone();
                    (sc.trace_id().to_string(), sc.span_id().to_string())
                };
                let (t, s) = ids(&span);
                (t, s, ids(&child).1)
            });
        assert_eq!(trace_id.len(), 32);
        assert_ne!(span_id, child_span_id);

        let text = text.lines();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(text[0].ends_with("before any span"), "{}", text[0]);
        assert!(!text[0].contains("trace_id"), "{}", text[0]);
        assert!(text[1].contains("inside the span attempt=1"), "{}", text[1]);
        assert!(
            text[1].ends_with(&format!(" trace_id={trace_id} span_id={span_id}")),
            "{}",
            text[1]
        );
        assert!(
            text[2].ends_with(&format!(" trace_id={trace_id} span_id={child_span_id}")),
            "{}",
            text[2]
        );

        let json: Vec<serde_json::Value> = json
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(json.len(), 3);
        assert_eq!(json[0]["message"], "before any span");
        assert!(json[0].get("trace_id").is_none(), "{}", json[0]);
        assert_eq!(json[1]["message"], "inside the span");
        assert_eq!(json[1]["attempt"], 1);
        assert_eq!(json[1]["trace_id"], trace_id.as_str());
        assert_eq!(json[1]["span_id"], span_id.as_str());
        assert_eq!(json[2]["trace_id"], trace_id.as_str());
        assert_eq!(json[2]["span_id"], child_span_id.as_str());
    }
}
