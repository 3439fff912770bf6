//! The baseline of the `ping` benchmark: a bare hyper 1 server on the same runtime as hostplane
//! that reads each request body and answers exactly the bytes and headers hostplane's `ping`
//! answers, with no envelope, dispatch or JSON work. Usage: bare_hyper ADDR

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const ANSWER: &[u8] = br#"{"response":"ok","result":{"version":"0.1.0"}}"#;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8099".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                let _ = req.into_body().collect().await;
                let mut r = hyper::Response::new(Full::new(Bytes::from_static(ANSWER)));
                let h = r.headers_mut();
                h.insert("content-type", "application/json".parse().unwrap());
                h.insert("cache-control", "no-store".parse().unwrap());
                h.insert("x-content-type-options", "nosniff".parse().unwrap());
                Ok::<_, Infallible>(r)
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
