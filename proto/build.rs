//! Compiles the `.proto` files in pure Rust (protox): no `protoc` is needed on the machine.
//! Generates prost messages, the tonic services and pbjson serde impls (the canonical JSON form).

use prost::Message;
use std::{env, fs, path::PathBuf};

const PROTOS: &[&str] = &[
    "yrdx/v1/common.proto",
    "yrdx/v1/records.proto",
    "yrdx/v1/disposal.proto",
    "yrdx/v1/risk.proto",
    "yrdx/v1/responsibility.proto",
    "yrdx/v1/envelope.proto",
    "yrdx/v1/exchange.proto",
    "yrdx/v1/admin.proto",
    "yrdx/v1/records_api.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", root.join("yrdx").display());
    println!("cargo:rerun-if-changed={}", root.join("google").display());

    let fds = protox::compile(PROTOS, [&root])?;
    let descriptor_bytes = fds.encode_to_vec();
    fs::write(out.join("yrdx_descriptor.bin"), &descriptor_bytes)?;

    tonic_prost_build::configure()
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(fds)?;

    pbjson_build::Builder::new().register_descriptors(&descriptor_bytes)?.build(&[".yrdx.v1", ".google.type"])?;
    Ok(())
}
