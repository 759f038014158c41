//! Why a command failed, and the exit code a script sees for it.
//!
//! One enum for every command, so the exit code is decided in one `match` ([`Error::exit_code`])
//! instead of by guessing at the type behind an `anyhow::Error`. The variants wrapping another
//! error are `transparent`: what `main` prints (the error, then its causes) is the wrapped
//! error's own message.

use std::io;

use crate::bbc::ReadError;
use crate::ops::OpsError;
use crate::replay::ReplayError;

/// Done.
pub const EX_OK: i32 = 0;
/// The service answered with an error, or the command failed for a reason not below.
pub const EX_FAILED: i32 = 1;
/// Bad usage: arguments clap refused (clap exits with it itself), or a topic `replay` cannot
/// read.
pub const EX_USAGE: i32 = 2;
/// `lag --max-lag` exceeded: an alerting probe acts on it.
pub const EX_LAG_ABOVE: i32 = 3;
/// A file or topic that does not exist (sysexits' EX_NOINPUT).
pub const EX_NOINPUT: i32 = 66;
/// A service or Kafka could not be reached (sysexits' EX_UNAVAILABLE).
pub const EX_UNAVAILABLE: i32 = 69;
/// `--timeout-secs` passed before the command was done: try again (sysexits' EX_TEMPFAIL).
pub const EX_TEMPFAIL: i32 = 75;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A service answered with an error; `UNAVAILABLE` means it could not be reached.
    #[error(transparent)]
    Service(#[from] tonic::Status),
    /// A service's address is not a URL, or nothing answers there.
    #[error(transparent)]
    Connect(#[from] tonic::transport::Error),
    /// A feed URL whose host could not be reached.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// A feed URL that answered, but not with the document.
    #[error("{location}: HTTP {status}")]
    Fetch {
        location: String,
        status: reqwest::StatusCode,
    },
    /// Fetching a feed URL failed past the connection (building the client, reading the body).
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// A local file (a feed, the data of the demo) or a listening address.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// `tail`, `lag`: Kafka, a missing topic, a timeout.
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// `replay`: Kafka, or a topic or range it cannot read.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// `lag --max-lag` exceeded.
    #[error("lag {lag} on {topic}[{partition}] is above {max}")]
    LagAbove {
        topic: String,
        partition: i32,
        lag: i64,
        max: i64,
    },
    /// `--watch` gave up after `--timeout-secs`.
    #[error("{0}")]
    Timeout(String),
    /// `NEWSROOM_TOKEN` / `--token` cannot be sent as a header.
    #[error("NEWSROOM_TOKEN / --token: not a valid header value")]
    BadToken,
    /// Bad arguments that clap cannot check (`token --role`).
    #[error("{0}")]
    Usage(String),
    /// `submit`: every item of the document was refused (each printed with its reason).
    #[error("nothing imported")]
    NothingImported,
    /// `demo`: ingest refused the seed story.
    #[error("the seed story was refused: {0}")]
    SeedRefused(String),
    /// `demo`: a file of the shared data folder.
    #[error(transparent)]
    Data(#[from] ReadError),
    /// A result that cannot be written as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The blocking thread a Kafka command ran on, or the webhook sink's server, died.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    /// The process's exit code for this error (the table in the README and `--help`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Service(status) if status.code() == tonic::Code::Unavailable => EX_UNAVAILABLE,
            Error::Service(_) => EX_FAILED,
            Error::Connect(_) | Error::Unreachable(_) => EX_UNAVAILABLE,
            Error::Ops(ops) | Error::Replay(ReplayError::Ops(ops)) => match ops {
                OpsError::Kafka(_) => EX_UNAVAILABLE,
                OpsError::UnknownTopic(_) => EX_NOINPUT,
                OpsError::Timeout(_) => EX_TEMPFAIL,
            },
            Error::Replay(ReplayError::NotReplayable(_) | ReplayError::BadRange(_))
            | Error::Usage(_) => EX_USAGE,
            Error::LagAbove { .. } => EX_LAG_ABOVE,
            Error::Timeout(_) => EX_TEMPFAIL,
            Error::Io(io) if io.kind() == io::ErrorKind::NotFound => EX_NOINPUT,
            Error::Io(_)
            | Error::Fetch { .. }
            | Error::Http(_)
            | Error::BadToken
            | Error::NothingImported
            | Error::SeedRefused(_)
            | Error::Json(_)
            | Error::Task(_) => EX_FAILED,
            // A missing file of the demo's data folder has always been 1, not 66: `demo` is not
            // a script's command, and its message names the file.
            Error::Data(_) => EX_FAILED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_the_exit_code_a_script_acts_on() {
        let cases = [
            (Error::Service(tonic::Status::not_found("no alert")), 1),
            (Error::Service(tonic::Status::unavailable("down")), 69),
            (Error::Unreachable("http://feed".into()), 69),
            (Error::from(io::Error::from(io::ErrorKind::NotFound)), 66),
            (
                Error::from(io::Error::from(io::ErrorKind::PermissionDenied)),
                1,
            ),
            (OpsError::UnknownTopic("t".into()).into(), 66),
            (OpsError::Timeout("t".into()).into(), 75),
            (
                ReplayError::Ops(OpsError::Kafka(
                    newsroom_platform::kafka::rdkafka::error::KafkaError::Canceled,
                ))
                .into(),
                69,
            ),
            (ReplayError::NotReplayable("profiles".into()).into(), 2),
            (ReplayError::BadRange("no partition 9".into()).into(), 2),
            (
                Error::LagAbove {
                    topic: "t".into(),
                    partition: 0,
                    lag: 2,
                    max: 1,
                },
                3,
            ),
            (Error::Timeout("alert".into()), 75),
            (
                Error::from(crate::bbc::ReadError::file(
                    std::path::Path::new("/data/seed-story.ninjs.json"),
                    io::Error::from(io::ErrorKind::NotFound),
                )),
                1,
            ),
            (Error::BadToken, 1),
            (Error::NothingImported, 1),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit_code(), code, "{error}");
        }
    }

    #[test]
    fn a_wrapped_error_prints_as_itself() {
        let e = Error::from(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(
            e.to_string(),
            io::Error::from(io::ErrorKind::NotFound).to_string()
        );
        let lag = Error::LagAbove {
            topic: "stories.raw".into(),
            partition: 2,
            lag: 5,
            max: 0,
        };
        assert_eq!(lag.to_string(), "lag 5 on stories.raw[2] is above 0");
    }
}
