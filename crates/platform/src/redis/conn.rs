//! One connection type for a single Redis (or Valkey) and for a Redis Cluster.
//!
//! [`Conn`] is what every service holds: a [`ConnectionManager`] on one server, or a
//! [`ClusterConnection`] that follows the cluster's slots. Both speak
//! [`ConnectionLike`], so commands, scripts and pipelines are written once.
//!
//! The one difference a caller would otherwise see is pipelines. A cluster connection sends a
//! whole pipeline to one node and refuses one whose keys span slots. [`Conn`] splits a plain
//! (non-atomic) pipeline by slot instead, sends the parts to their nodes at once, and puts the
//! replies back in the order of the commands: a batch of reads or writes over many readers'
//! keys is still one call site and one round trip per node. Commands in the same slot keep
//! their order (they go in one part). An atomic pipeline (`MULTI`) is not split: its keys must
//! share a hash tag, and a cluster refuses it loudly (`CROSSSLOT`) when they do not.

use std::collections::HashMap;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Arg, Cmd, Pipeline, RedisFuture, Value};

/// A connection to one Redis, or to a Redis Cluster. Cheap to clone (one multiplexed
/// connection per node, shared); reconnects by itself.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => {
                if pipeline.is_transaction() {
                    c.req_packed_commands(pipeline, offset, count)
                } else {
                    Box::pin(by_slot(c.clone(), pipeline))
                }
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Where one command of a pipeline goes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    /// With the other commands on this slot, in order.
    Slot(Slot),
    /// On its own: the cluster connection splits it over slots itself (`MGET`, `DEL k1 k2`,
    /// `EXISTS` …), or sends it to every node.
    Alone(usize),
    /// With whichever part comes first: no key (`PING`), or no slot that matters (`PUBLISH`:
    /// a cluster forwards it to every node).
    Any,
}

fn part_of(index: usize, cmd: &Cmd) -> Part {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|a| match a {
            Arg::Simple(a) => Some(a),
            _ => None,
        })
        .collect();
    let Some(name) = args.first() else {
        return Part::Any;
    };
    let name = name.to_ascii_uppercase();
    let key = match name.as_slice() {
        // Scripts: the first of their keys (a script's keys share one slot).
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            match args
                .get(2)
                .and_then(|n| std::str::from_utf8(n).ok()?.parse::<u32>().ok())
            {
                Some(n) if n > 0 => args.get(3),
                _ => return Part::Any,
            }
        }
        // Split over slots by the cluster connection itself when they name several keys.
        b"MGET" | b"DEL" | b"EXISTS" | b"UNLINK" | b"TOUCH" if args.len() > 2 => {
            return Part::Alone(index);
        }
        b"MSET" if args.len() > 3 => return Part::Alone(index),
        // No key.
        b"PING" | b"PUBLISH" | b"SCRIPT" | b"INFO" | b"TIME" | b"ECHO" => return Part::Any,
        // A subcommand first, then the key.
        b"XGROUP" | b"XINFO" | b"OBJECT" | b"MEMORY" => args.get(2),
        _ => args.get(1),
    };
    key.map_or(Part::Any, |key| Part::Slot(Slot::for_key(key)))
}

/// Sends a plain pipeline as one sub-pipeline per slot (at once), and returns the replies in
/// the order of its commands.
async fn by_slot(conn: ClusterConnection, pipeline: &Pipeline) -> redis::RedisResult<Vec<Value>> {
    let mut parts: Vec<(Part, Vec<usize>)> = Vec::new();
    let mut place: HashMap<Part, usize> = HashMap::new();
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        let mut part = part_of(i, cmd);
        if part == Part::Any {
            // A keyless command rides with the first part there is.
            part = parts.first().map_or(Part::Any, |(p, _)| *p);
        }
        let at = *place.entry(part).or_insert_with(|| {
            parts.push((part, Vec::new()));
            parts.len() - 1
        });
        parts[at].1.push(i);
    }
    if parts.len() <= 1 && !matches!(parts.first(), Some((Part::Alone(_), _))) {
        let mut conn = conn;
        return conn.req_packed_commands(pipeline, 0, pipeline.len()).await;
    }
    let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
    let sent = parts.iter().map(|(part, indexes)| {
        let mut conn = conn.clone();
        let mut sub = redis::pipe();
        for &i in indexes {
            sub.add_command(commands[i].clone());
        }
        let alone = matches!(part, Part::Alone(_)).then(|| commands[indexes[0]]);
        async move {
            match alone {
                // As a command of its own, which the cluster connection splits over slots.
                Some(cmd) => Ok(vec![conn.req_packed_command(cmd).await?]),
                None => conn.req_packed_commands(&sub, 0, sub.len()).await,
            }
        }
    });
    let replies = futures::future::try_join_all(sent).await?;
    let mut ordered: Vec<Option<Value>> = vec![None; pipeline.len()];
    for ((_, indexes), values) in parts.iter().zip(replies) {
        for (&i, value) in indexes.iter().zip(values) {
            ordered[i] = Some(value);
        }
    }
    ordered
        .into_iter()
        .map(|v| {
            v.ok_or_else(|| {
                redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "a cluster node answered a pipeline with fewer replies than commands",
                ))
            })
        })
        .collect()
}
