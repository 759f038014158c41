//! What goes wrong, as a page or an API client sees it.
//!
//! The JSON API answers `{"error": {"code", "message", "field"}}` with the HTTP status of the
//! gRPC code the service gave (`INVALID_ARGUMENT` → 400 naming the field, `NOT_FOUND` → 404,
//! `UNAUTHENTICATED` → 401, `PERMISSION_DENIED` → 403, `FAILED_PRECONDITION` → 409,
//! `RESOURCE_EXHAUSTED` → 429, `UNAVAILABLE` → 503 …); pages show the same as a short page.
//! A service's internal detail is never passed on: its message is logged, the client gets the
//! code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::Code;
use tonic_types::StatusExt as _;

/// A request that could not be served.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Upstream(#[from] tonic::Status),
}

impl WebError {
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        WebError::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The HTTP status, the code's name, the message and the field for a client.
    pub fn parts(&self) -> (StatusCode, &'static str, String, Option<String>) {
        match self {
            WebError::Invalid { field, reason } => (
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                format!("{field}: {reason}"),
                Some(field.clone()),
            ),
            WebError::Unauthenticated(m) => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                (*m).to_owned(),
                None,
            ),
            WebError::Forbidden(m) => (
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                (*m).to_owned(),
                None,
            ),
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, "NOT_FOUND", m.clone(), None),
            WebError::Upstream(s) => {
                let field = s
                    .get_error_details()
                    .bad_request()
                    .and_then(|b| b.field_violations.first().map(|v| v.field.clone()));
                let (status, name) = match s.code() {
                    Code::InvalidArgument | Code::OutOfRange => {
                        (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT")
                    }
                    Code::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
                    Code::AlreadyExists => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
                    Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
                    Code::PermissionDenied => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
                    Code::FailedPrecondition | Code::Aborted => {
                        (StatusCode::CONFLICT, "FAILED_PRECONDITION")
                    }
                    Code::ResourceExhausted => {
                        (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED")
                    }
                    Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
                    }
                    _ => (StatusCode::BAD_GATEWAY, "INTERNAL"),
                };
                let message = if status.is_client_error() {
                    s.message().to_owned()
                } else {
                    tracing::warn!(code = ?s.code(), message = s.message(), "a service failed");
                    "a service behind this page failed; try again shortly".to_owned()
                };
                let field = field.or_else(|| {
                    (status == StatusCode::BAD_REQUEST)
                        .then(|| {
                            s.message()
                                .split_once(':')
                                .map(|(f, _)| f.trim().to_owned())
                        })
                        .flatten()
                        .filter(|f| !f.is_empty() && !f.contains(' '))
                });
                (status, name, message, field)
            }
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// The gRPC code's name: INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED …
    pub code: &'static str,
    pub message: String,
    /// The request field at fault (for INVALID_ARGUMENT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, code, message, field) = self.parts();
        (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code,
                    message,
                    field,
                },
            }),
        )
            .into_response()
    }
}

/// Every error of the JSON API is a JSON error body, including the ones axum answers before
/// a handler runs (a path it cannot decode, a method the route does not have, a query that is
/// not `key=value` pairs): their text becomes the message, and a 400 names the part at fault.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    let status = res.status();
    let json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !api || json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let body = axum::body::to_bytes(res.into_body(), 4096)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let lower = message.to_lowercase();
    let (code, field) = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            let part = if lower.contains("query") {
                "query"
            } else if lower.contains("path") {
                "path"
            } else {
                "body"
            };
            ("INVALID_ARGUMENT", Some(part.to_owned()))
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("INVALID_ARGUMENT", Some("content-type".to_owned())),
        StatusCode::PAYLOAD_TOO_LARGE => ("RESOURCE_EXHAUSTED", Some("body".to_owned())),
        StatusCode::METHOD_NOT_ALLOWED => ("UNIMPLEMENTED", None),
        StatusCode::NOT_FOUND => ("NOT_FOUND", None),
        s if s.is_server_error() => ("INTERNAL", None),
        _ => ("FAILED_PRECONDITION", None),
    };
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail {
                code,
                message,
                field,
            },
        }),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_services_invalid_argument_names_its_field_and_internal_detail_stays_inside() {
        let (status, code, _, field) =
            WebError::Upstream(tonic::Status::invalid_argument("limit: expected 1..100")).parts();
        assert_eq!(
            (status, code),
            (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT")
        );
        assert_eq!(field.as_deref(), Some("limit"));
        let (status, _, message, _) =
            WebError::Upstream(tonic::Status::internal("redis at 10.0.0.3 refused")).parts();
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(!message.contains("10.0.0.3"));
        let (status, ..) = WebError::Upstream(tonic::Status::unavailable("down")).parts();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
