//! Generates the tfplugin5 and go-plugin gRPC code. Uses the vendored protoc so a
//! fresh machine needs nothing but the Rust toolchain.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the env concurrently.
    unsafe { std::env::set_var("PROTOC", &protoc) };

    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        proto_dir.join("tfplugin5.proto"),
        proto_dir.join("plugin.proto"),
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    tonic_prost_build::configure()
        .build_server(true)
        // The client is only used by this crate's tests; generating it is cheap.
        .build_client(true)
        .generate_default_stubs(true)
        .compile_protos(&files, &[proto_dir, include])?;
    Ok(())
}
