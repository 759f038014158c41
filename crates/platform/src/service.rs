//! The life of a service binary, the same for the four: configuration from the environment (a
//! bad value is reported naming its variable and the process exits with 64 before any port is
//! bound), telemetry, the gRPC and admin listeners, then the service's `run` until SIGTERM or
//! SIGINT asks it to drain. Each `main.rs` is one call to [`main`].

use std::future::Future;

use crate::config::{EXIT_CONFIG, Env};
use crate::server::Listeners;
use crate::shutdown::{Shutdown, wait_for_signal};
use crate::{ConfigError, PlatformConfig};

/// What a service binary returns from `main` when it stops on an error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service's configuration: read from the environment, and carrying the platform's part.
pub trait ServiceConfig: Sized {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError>;
    fn platform(&self) -> &PlatformConfig;
}

/// The configuration from the process environment; on an error, says which variable and why
/// on standard error and exits with [`EXIT_CONFIG`] (64).
pub fn config_or_exit<C: ServiceConfig>(binary: &str) -> C {
    match C::from_env(&Env::process()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{binary}: configuration error: {e}");
            std::process::exit(EXIT_CONFIG);
        }
    }
}

/// Runs a service binary: configuration ([`config_or_exit`]), telemetry (flushed when this
/// returns), listeners, and `run` with a [`Shutdown`] triggered by SIGTERM or SIGINT.
pub async fn main<C, F, E>(
    binary: &str,
    run: impl FnOnce(C, Listeners, Shutdown) -> F,
) -> Result<(), BoxError>
where
    C: ServiceConfig,
    F: Future<Output = Result<(), E>>,
    E: Into<BoxError>,
{
    let config: C = config_or_exit(binary);
    let _telemetry = crate::telemetry::init(config.platform())?;
    let listeners = Listeners::bind(config.platform()).await?;
    let shutdown = Shutdown::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            wait_for_signal().await;
            shutdown.trigger();
        }
    });
    run(config, listeners, shutdown).await.map_err(Into::into)
}
