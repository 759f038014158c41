//! A service of a [`Pipeline`] running as its own process — the binary `cargo build` made —
//! for the faults only a process has: SIGKILL (no unwinding, no drop, no flush; the kernel
//! closes its sockets) and a restart on the same addresses.

use std::net::SocketAddr;
use std::process::Stdio;

use crate::{Pipeline, Service, binary, wait_ready};

/// One service process, on fixed 127.0.0.1 ports so a restart keeps its address.
pub struct ServiceProcess {
    pub service: Service,
    pub grpc: SocketAddr,
    admin: SocketAddr,
    env: Vec<(String, String)>,
    log: std::path::PathBuf,
    child: Option<tokio::process::Child>,
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

impl ServiceProcess {
    /// Starts `service` with `pipeline`'s environment and waits until it is ready. Its log
    /// (warnings and up) goes to `$TMPDIR/newsroom-<pipeline id>-<service>.log`.
    pub async fn spawn(pipeline: &Pipeline, service: Service) -> Self {
        let mut p = ServiceProcess {
            service,
            grpc: free_addr(),
            admin: free_addr(),
            env: pipeline.env(service).into_iter().collect(),
            log: std::env::temp_dir().join(format!(
                "newsroom-{}-{}.log",
                pipeline.id,
                service.name()
            )),
            child: None,
        };
        p.env.push(("RUST_LOG".into(), "warn".into()));
        p.start().await;
        p
    }

    async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the service's log file");
        let child =
            tokio::process::Command::new(binary(&format!("newsroom-{}", self.service.name())))
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("NEWSROOM_GRPC_ADDR", self.grpc.to_string())
                .env("NEWSROOM_ADMIN_ADDR", self.admin.to_string())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("start newsroom-{}: {e}", self.service.name()));
        self.child = Some(child);
        wait_ready(self.service, self.admin).await;
    }

    /// SIGKILL, and waits until the process is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same addresses and waits until it is ready.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.start().await;
    }
}
