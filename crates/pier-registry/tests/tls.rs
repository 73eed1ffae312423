//! A `docker-registry` serving HTTPS with a certificate from a CA the test makes
//! (openssl CLI): trusted through a `certs.d/<host:port>/ca.crt` like Docker's
//! `/etc/docker/certs.d`, refused without it, accepted unchecked when the
//! registry is listed as insecure, and reached over HTTPS on loopback.

// Test set-up and checks, not daemon code.
#![allow(clippy::disallowed_methods)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use pier_reference::Reference;
use pier_registry::{Client, PullOptions, PushImage, PushOptions, RegistryOptions};

/// The name in the server certificate; the client resolves it to loopback.
const NAME: &str = "registry.pier.test";

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for NAME and 127.0.0.1 signed by it.
/// Returns (ca.crt, server.crt, server.key).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
    ca.extend(ec);
    ca.extend([
        "-subj",
        "/CN=pier test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    openssl(&ca, dir);
    let mut csr = vec!["req", "-nodes"];
    csr.extend(ec);
    csr.extend([
        "-subj",
        "/CN=registry.pier.test",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(&csr, dir);
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName=DNS:{NAME},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.crt",
        ],
        dir,
    );
    (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
}

fn client_with(opts: RegistryOptions) -> Client {
    Client::new(opts).unwrap()
}

async fn round_trip(c: &Client, domain: &str, dir: &Path, tag: &str) -> Result<(), String> {
    let src = store_in(dir, &format!("src-{tag}"));
    let img = make_image(&src, vec![tar_of(&[("tls.txt", tag.as_bytes())])], true);
    let target = Reference::parse(&format!("{domain}/tls/app:{tag}")).unwrap();
    let pushed = pier_registry::push(
        c,
        &src,
        &target,
        &PushImage {
            config: img.config.clone(),
            layers: img.layers.clone(),
            source_manifest: None,
            mount_from: Vec::new(),
        },
        &PushOptions::default(),
        &pier_registry::no_progress,
    )
    .await
    .map_err(|e| e.to_string())?;
    let dst = store_in(dir, &format!("dst-{tag}"));
    let pulled = pier_registry::pull(
        c,
        &dst,
        &target,
        &PullOptions::default(),
        &pier_registry::no_progress,
    )
    .await
    .map_err(|e| e.to_string())?;
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(pulled.config, img.config);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_registry_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path());
    let reg = Registry::start_tls(&cert, &key);
    let addr: SocketAddr = reg.addr.parse().unwrap();
    let domain = format!("{NAME}:{}", addr.port());
    let resolve = vec![(NAME.to_string(), addr)];

    // Trusted through certs.d/<host:port>/ca.crt (the second directory, as
    // /etc/docker/certs.d comes after Pier's own).
    let certs_d = dir.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(&domain)).unwrap();
    std::fs::copy(&ca, certs_d.join(&domain).join("ca.crt")).unwrap();
    let trusted = client_with(RegistryOptions {
        certs_dirs: vec![dir.path().join("no-such-certs.d"), certs_d.clone()],
        resolve: resolve.clone(),
        ..Default::default()
    });
    round_trip(&trusted, &domain, dir.path(), "trusted")
        .await
        .unwrap_or_else(|e| panic!("push/pull with the CA in certs.d: {e}\n{}", reg.log()));

    // Without the CA: refused, saying why, and no plain-HTTP fallback.
    let untrusted = client_with(RegistryOptions {
        resolve: resolve.clone(),
        ..Default::default()
    });
    let e = round_trip(&untrusted, &domain, dir.path(), "untrusted")
        .await
        .expect_err("an unknown CA must be refused");
    assert!(
        e.contains("certificate") || e.contains("UnknownIssuer"),
        "error should name the certificate problem: {e}"
    );

    // Listed as insecure: HTTPS without checking the certificate.
    let insecure = client_with(RegistryOptions {
        insecure: vec![domain.clone()],
        resolve,
        ..Default::default()
    });
    round_trip(&insecure, &domain, dir.path(), "insecure")
        .await
        .unwrap_or_else(|e| panic!("insecure registry over HTTPS: {e}"));

    // Loopback by address: HTTPS first, as Docker does, certificate unchecked.
    let loopback = client_with(RegistryOptions::default());
    round_trip(&loopback, &reg.addr, dir.path(), "loopback")
        .await
        .unwrap_or_else(|e| panic!("HTTPS registry on loopback: {e}"));
}
