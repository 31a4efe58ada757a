//! Compiles the public API in `proto/` into Rust (prost messages, tonic clients and servers)
//! and writes the file descriptor set that server reflection serves.
//!
//! `protoc` and the well-known types come from the `protoc-bin-vendored` crate, so a build
//! needs no system protobuf compiler.
//!
//! It also records where libtorch lives (`LIBTORCH`, see `.cargo/config.toml`) as the
//! binary's run path, so `codexcontinue` starts without `LD_LIBRARY_PATH`; the `tch`
//! crate's own link flags do not reach the final binary.

use std::{env, error::Error, path::PathBuf};

/// Adds `$LIBTORCH/lib` to the run path of the crate's binaries and tests.
fn link_libtorch_rpath() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let libtorch = PathBuf::from(env::var("LIBTORCH").map_err(
        |_| "LIBTORCH is not set: run `make libtorch` (or set it to a libtorch 2.13 tree)",
    )?);
    let lib = std::fs::canonicalize(libtorch.join("lib")).map_err(|err| {
        format!(
            "{}: {err}; run `make libtorch` to fetch libtorch",
            libtorch.join("lib").display()
        )
    })?;
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    Ok(())
}

/// The files of package `codexcontinue.v1`, the API the server serves.
const API_FILES: &[&str] = &[
    "common", "chat", "memory", "auth", "admin", "plugins", "models", "audit",
];

fn main() -> Result<(), Box<dyn Error>> {
    let proto_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let includes = [proto_root.clone(), protoc_bin_vendored::include_path()?];
    let protoc = protoc_bin_vendored::protoc_bin_path()?;

    let api: Vec<PathBuf> = API_FILES
        .iter()
        .map(|name| proto_root.join(format!("codexcontinue/v1/{name}.proto")))
        .collect();
    let mut config = prost_build::Config::new();
    config.protoc_executable(&protoc);
    // Message names let the API's codec find each request's descriptor.
    config.enable_type_names();
    tonic_prost_build::configure()
        .codec_path("crate::edge::CheckedCodec")
        .file_descriptor_set_path(out_dir.join("codexcontinue_v1_descriptor.bin"))
        .compile_with_config(config, &api, &includes)?;

    // The protocol plugins serve: the server is its client; tests also run a plugin.
    let mut config = prost_build::Config::new();
    config.protoc_executable(&protoc);
    tonic_prost_build::configure().compile_with_config(
        config,
        &[proto_root.join("codexcontinue/plugin/v1/plugin.proto")],
        &includes,
    )?;

    link_libtorch_rpath()?;

    println!("cargo:rerun-if-changed={}", proto_root.display());
    // `sqlx::migrate!` embeds migrations/; a new file there must rebuild the crate.
    println!("cargo:rerun-if-changed=../migrations");
    Ok(())
}
