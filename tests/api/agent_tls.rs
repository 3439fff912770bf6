//! The node agent over https: an API behind TLS (a test CA signs `localhost`) is reached with
//! `--ca-file`, and an unusable CA file stops the agent at start with a message naming it.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{crypto::ring, ServerConfig};

use crate::agents::{agent_world, node_status_until};

/// A TLS front for `upstream` on a port of its own, with a certificate for `localhost` signed
/// by a fresh CA; returns its port and the CA's PEM.
async fn tls_front(upstream: SocketAddr) -> (u16, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "hostplane test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                if let Ok(mut plain) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    (port, ca_cert.pem())
}

use crate::agents::agent_command as agent;

#[tokio::test]
async fn the_agent_syncs_over_https_trusting_its_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let w = agent_world(dir.path()).await;
    let (port, ca) = tls_front(w.app.addr).await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let api = format!("https://localhost:{port}");
    let ca_flag = ["--ca-file", ca_file.to_str().unwrap()];
    let _agent = agent(&api, dir.path(), &ca_flag).spawn().unwrap();
    let site = w.site(&w.alice.1, 2).await;
    w.domain(&w.alice.1, 2, site, "tls.example.com").await;
    node_status_until(&w, |st| st["in_sync"] == true).await;
    let conf = std::fs::read_to_string(dir.path().join("sites/hostplane-site1.conf")).unwrap();
    assert!(conf.contains("tls.example.com"), "{conf}");
}

#[tokio::test]
async fn an_unusable_ca_file_stops_the_agent_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "hpn_unused").unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate at all\n").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.pem");
    for (file, says) in [
        (&missing, "cannot read --ca-file"),
        (&garbage, "holds no PEM certificate"),
        (&broken, "--ca-file"),
    ] {
        let flags = ["--ca-file", file.to_str().unwrap()];
        let run = agent("https://localhost:1", dir.path(), &flags).output();
        let out = tokio::time::timeout(std::time::Duration::from_secs(10), run)
            .await
            .expect("the agent stops at once")
            .unwrap();
        assert!(!out.status.success(), "{file:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(says) && stderr.contains(&file.display().to_string()),
            "{file:?}: {stderr}"
        );
    }
    let out = agent("ftp://localhost:1", dir.path(), &[])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--api"));
}
