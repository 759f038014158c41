//! The `newsroom.v1` contract, generated from `proto/newsroom/v1/`.
//!
//! Messages on Kafka are the same protobuf messages as on gRPC, so every service and test
//! depends on this one crate. [`FILE_DESCRIPTOR_SET`] feeds gRPC server reflection.

/// Generated types of package `newsroom.v1`.
#[allow(clippy::all, unreachable_pub, missing_docs, rust_2018_idioms)]
pub mod v1 {
    tonic::include_proto!("newsroom.v1");
}

/// The encoded `FileDescriptorSet` of the whole contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/newsroom_descriptor.bin"));

pub mod media_topics;

/// An entity kind as pages, the JSON API and WebAssembly stages spell it: "person",
/// "organisation", "place", "event", else "other".
pub fn entity_kind_name(kind: i32) -> &'static str {
    use v1::EntityKind;
    match EntityKind::try_from(kind) {
        Ok(EntityKind::Person) => "person",
        Ok(EntityKind::Organisation) => "organisation",
        Ok(EntityKind::Place) => "place",
        Ok(EntityKind::Event) => "event",
        _ => "other",
    }
}

pub use prost::Message;
pub use prost_types::Timestamp;
