//! A real HTTP webhook receiver for the tests: records every POST it gets and answers with the
//! status it is told to (or is not listening at all while "down").

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature: String,
    pub event_header: String,
    pub body: Bytes,
    pub json: Value,
    /// What the receiver answered.
    pub answered: u16,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    /// Milliseconds to wait before answering.
    delay_ms: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// Listens on a free loopback port, answering 200.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Receiver {
            addr,
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            delay_ms: Arc::default(),
            task: None,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: TcpListener) {
        let got = Arc::clone(&self.got);
        let status = Arc::clone(&self.status);
        let delay_ms = Arc::clone(&self.delay_ms);
        self.task = Some(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let got = Arc::clone(&got);
                let status = Arc::clone(&status);
                let delay_ms = Arc::clone(&delay_ms);
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let got = Arc::clone(&got);
                    let status = Arc::clone(&status);
                    let delay = Duration::from_millis(delay_ms.load(Ordering::SeqCst));
                    async move {
                        tokio::time::sleep(delay).await;
                        let header = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string()
                        };
                        let signature = header("x-hostplane-signature");
                        let event_header = header("x-hostplane-event");
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let answered = status.load(Ordering::SeqCst);
                        got.lock().unwrap().push(Received {
                            signature,
                            event_header,
                            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
                            body,
                            answered,
                        });
                        let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"ok")));
                        *resp.status_mut() = hyper::StatusCode::from_u16(answered).unwrap();
                        // No keep-alive: "down" must refuse the very next delivery.
                        resp.headers_mut().insert(
                            "connection",
                            hyper::header::HeaderValue::from_static("close"),
                        );
                        Ok::<_, Infallible>(resp)
                    }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }

    /// Answers every request with this status from now on.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Waits this long before answering each request from now on.
    pub fn slow(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Stops listening (connections are refused) until [`up`](Self::up).
    pub fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The requests answered 2xx, in arrival order.
    pub fn delivered(&self) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| (200..300).contains(&r.answered))
            .cloned()
            .collect()
    }

    /// Waits until `n` requests were answered 2xx; panics after `within`.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let d = self.delivered();
            if d.len() >= n {
                return d;
            }
            assert!(
                started.elapsed() < within,
                "only {} of {n} webhook deliveries arrived: {:?}",
                d.len(),
                d.iter().map(|r| r.json.clone()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}
