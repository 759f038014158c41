//! Compiles `proto/newsroom/v1/*.proto` without a system `protoc`: protox parses the files into a
//! descriptor set (written to `OUT_DIR` for gRPC reflection), and tonic-prost-build generates the
//! messages, clients and servers from that set.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let dir = root.join("newsroom/v1");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed={}", dir.display());
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("newsroom_descriptor.bin"), fds.encode_to_vec())?;

    // Type names (`prost::Name`): a record that is not the message it should be is dead-lettered
    // with the message's full name (`not a newsroom.v1.StoryEvent`).
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
