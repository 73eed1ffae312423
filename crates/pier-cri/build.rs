//! Compiles the CRI v1 protobufs (kubernetes/cri-api `pkg/apis/runtime/v1/api.proto`,
//! vendored in `proto/`) with protox, a pure-Rust protobuf compiler, so no `protoc`
//! is needed to build Pier.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/api.proto");
    let fds = protox::compile(["api.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // RPCs not written yet answer Unimplemented.
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
