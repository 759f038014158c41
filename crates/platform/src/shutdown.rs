//! Graceful shutdown.
//!
//! [`Shutdown`] is a cancellation token shared by the gRPC server, the consumer loops and any
//! background task. `main` cancels it on SIGTERM or SIGINT ([`wait_for_signal`]); tests cancel it
//! directly. After cancellation each worker finishes the record it holds, commits its offsets and
//! returns; [`Shutdown::drain`] waits for that, bounded by the drain timeout, so a stuck worker
//! can never keep a pod alive past its termination grace period.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Tells workers to stop, and waits (bounded) until they did.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every worker to stop.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Resolves once shutdown was asked for.
    pub async fn requested(&self) {
        self.token.cancelled().await;
    }

    pub fn is_requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// A token cancelled with the shutdown, or on its own (a partition's task is stopped by a
    /// revoke, and by the shutdown).
    pub fn child_token(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// Spawns a worker that the drain waits for.
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(fut)
    }

    /// Waits for every spawned worker to finish, at most `timeout`. Returns false on timeout.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.drain_until(Instant::now() + timeout).await
    }

    /// Waits for every spawned worker to finish, until `deadline` at most (one deadline for the
    /// whole stop: see `service::Service::serve`). Returns false when it passed.
    pub async fn drain_until(&self, deadline: Instant) -> bool {
        self.tasks.close();
        let done = tokio::time::timeout_at(deadline.into(), self.tasks.wait())
            .await
            .is_ok();
        if !done {
            tracing::warn!(
                remaining = self.tasks.len(),
                "drain deadline passed; exiting with workers still running"
            );
        }
        done
    }
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    // If the handlers cannot be installed we would never stop gracefully: fall back to ctrl-c.
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
}
