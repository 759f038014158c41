//! `newsroom webhook-sink`: a phone-like webhook endpoint ([`crate::sink`]) that prints each
//! alert it receives as a JSON line, until interrupted.

use crate::Error;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:8099")]
    addr: String,
}

pub async fn run(args: Args) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    let (addr, _received, task) = crate::sink::serve(listener, true).await;
    eprintln!("webhook sink listening on http://{addr}/");
    task.await?;
    Ok(())
}
