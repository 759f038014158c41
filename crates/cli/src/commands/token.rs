//! `newsroom token`: mints a development JWT with the local signing key (see
//! [`newsroom_platform::auth::dev`]), made on first use. Services in `local` auth mode trust
//! that key, so the README's examples can act as a reader, an editor or the reader-facing
//! backend; a deployment in `enforce` mode trusts only its own JWKS and refuses these tokens.

use std::time::Duration;

use newsroom_platform::auth::Role;
use newsroom_platform::auth::dev::{self, DevKey, TokenSpec};
use newsroom_platform::config::Env;

use super::print_json;
use crate::{Error, Globals};

#[derive(clap::Args)]
pub struct Args {
    /// The subject: a reader's id, or the name of the service or person.
    #[arg(long)]
    sub: String,
    /// A role (repeatable): reader, editor, source, service, operator. None = a reader.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// The source a `source` token submits for (`*` for any).
    #[arg(long)]
    source: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl_secs: u64,
}

pub fn run(args: Args, globals: &Globals) -> Result<(), Error> {
    for role in &args.roles {
        if Role::parse(role).is_none() {
            return Err(Error::Usage(format!(
                "--role {role:?}: one of reader, editor, source, service, operator"
            )));
        }
    }
    if args.sub.trim().is_empty() {
        return Err(Error::Usage("--sub: required".into()));
    }
    let env = Env::process();
    let dir = dev::dir(&env);
    let key = DevKey::load_or_create(&dir)
        .map_err(|e| Error::Usage(format!("development key in {}: {e}", dir.display())))?;
    let mut spec = TokenSpec::new(&args.sub, &[]);
    spec.roles = args.roles;
    spec.source = args.source;
    spec.ttl = Duration::from_secs(args.ttl_secs.max(1));
    let token = key.mint(&spec);
    if globals.json() {
        print_json(&serde_json::json!({"token": token, "kid": key.kid()}));
    } else {
        println!("{token}");
    }
    Ok(())
}
