//! [`HttpProbe`]: one bounded `GET` to an HTTP side port, over hyper's HTTP/1 client. Used by
//! `peerchain health --http` (inside a `FROM scratch` image, with no curl) and by the tests.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Largest body a probe reads (a metrics page of a large member is well under this).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Why a probe got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr}: no answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("{addr}: HTTP error: {reason}")]
    Http { addr: String, reason: String },
    #[error("{addr}: body larger than {MAX_BODY} bytes")]
    TooLarge { addr: String },
}

/// A status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReply {
    pub status: u16,
    pub body: String,
}

impl ProbeReply {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A bounded HTTP GET.
pub struct HttpProbe;

impl HttpProbe {
    /// `GET http://{addr}{path}`, connect and answer within `timeout`.
    ///
    /// # Errors
    /// [`ProbeError`]: unreachable, timed out, not HTTP, or too large.
    pub async fn get(addr: &str, path: &str, timeout: Duration) -> Result<ProbeReply, ProbeError> {
        tokio::time::timeout(timeout, Self::get_inner(addr, path))
            .await
            .map_err(|_| ProbeError::Timeout {
                addr: addr.to_string(),
                timeout,
            })?
    }

    async fn get_inner(addr: &str, path: &str) -> Result<ProbeReply, ProbeError> {
        let http = |e: &dyn std::fmt::Display| ProbeError::Http {
            addr: addr.to_string(),
            reason: e.to_string(),
        };
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ProbeError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http(&e))?;
        let driver = tokio::spawn(conn);
        let req = Request::get(path)
            .header(hyper::header::HOST, addr)
            .body(Empty::<Bytes>::new())
            .map_err(|e| http(&e))?;
        let resp = sender.send_request(req).await.map_err(|e| http(&e))?;
        let status = resp.status().as_u16();
        let limited = http_body_util::Limited::new(resp.into_body(), MAX_BODY);
        let body = limited.collect().await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ProbeError::TooLarge {
                    addr: addr.to_string(),
                }
            } else {
                http(&e)
            }
        })?;
        driver.abort();
        Ok(ProbeReply {
            status,
            body: String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        })
    }
}
