//! Generated protobuf types, clients and servers of the public API (`proto/`).
//!
//! Nothing below `api/` uses these types directly; domain modules convert to and from them
//! at the API boundary.
#![allow(missing_docs, clippy::all)]

/// Package `codexcontinue.v1`: the services clients call.
pub mod v1 {
    tonic::include_proto!("codexcontinue.v1");

    /// Encoded `FileDescriptorSet` of package `codexcontinue.v1`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("codexcontinue_v1_descriptor");
}

/// Package `codexcontinue.plugin.v1`: the protocol a plugin serves to the server.
pub mod plugin {
    tonic::include_proto!("codexcontinue.plugin.v1");
}
