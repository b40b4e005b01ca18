//! The byte stream between two servers: TCP, or TLS over it as ZooKeeper's
//! quorum TLS is configured (`sslQuorum`, `ssl.quorum.*`, and
//! `portUnification` for the rolling switch: a port that takes both, told
//! apart by the first byte), and how each end makes one.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::tls::{rustls_config, TlsSettings};

pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection to or from a peer, plain or TLS.
pub(crate) type Stream = Box<dyn Io>;

/// TLS record type of a handshake: a TLS peer's first byte. A plaintext
/// peer's first byte is the high byte of its server id (0 for any id
/// below 2^56).
const TLS_HANDSHAKE: u8 = 0x16;

/// How this server's peer connections are made.
#[derive(Default)]
pub(crate) struct PeerTls {
    /// `sslQuorum`: dial over TLS.
    connector: Option<tokio_rustls::TlsConnector>,
    /// `sslQuorum` or `portUnification`: accept TLS.
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// Accept plaintext too (`sslQuorum` off, or `portUnification`).
    accept_plain: bool,
}

impl PeerTls {
    pub(crate) fn new(t: &TlsSettings) -> Result<PeerTls, String> {
        if !t.quorum_enabled() {
            return Ok(PeerTls {
                accept_plain: true,
                ..Default::default()
            });
        }
        let connector = match t.ssl_quorum {
            true => Some(tokio_rustls::TlsConnector::from(Arc::new(
                rustls_config::client(&t.quorum)?,
            ))),
            false => None,
        };
        // Servers always present certificates to each other (ZooKeeper's
        // quorum clientAuth is `need` unless set otherwise).
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(rustls_config::server(
            &t.quorum,
            t.quorum.client_auth,
        )?));
        tracing::info!(
            "quorum TLS: dialling {}, accepting {}",
            if t.ssl_quorum {
                "over TLS"
            } else {
                "plaintext"
            },
            match (t.ssl_quorum, t.quorum_port_unification) {
                (true, false) => "TLS only",
                _ => "TLS and plaintext (portUnification)",
            }
        );
        Ok(PeerTls {
            connector,
            acceptor: Some(acceptor),
            accept_plain: !t.ssl_quorum || t.quorum_port_unification,
        })
    }

    /// The dialling end over a connected socket to `addr` ("host:port"),
    /// and, when it is plain TCP, the socket itself for writes from
    /// outside the stream's owner (`peer_lane`).
    pub(crate) async fn dial(
        &self,
        addr: &str,
        sock: TcpStream,
    ) -> Result<(Stream, Option<Arc<TcpStream>>), String> {
        let Some(c) = &self.connector else {
            let shared = Arc::new(sock);
            return Ok((Box::new(SharedTcp(shared.clone())), Some(shared)));
        };
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
        match c.connect(name, sock).await {
            Ok(s) => Ok((Box::new(s), None)),
            Err(e) => Err(format!("TLS: {}", crate::tls::describe(&e))),
        }
    }

    /// The accepting end over an accepted socket.
    pub(crate) async fn accept(&self, sock: TcpStream) -> Result<Stream, String> {
        let Some(a) = &self.acceptor else {
            return Ok(Box::new(sock));
        };
        if self.accept_plain {
            let mut first = [0u8; 1];
            let n = sock.peek(&mut first).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed before it said anything".into());
            }
            if first[0] != TLS_HANDSHAKE {
                return Ok(Box::new(sock));
            }
        }
        match a.accept(sock).await {
            Ok(s) => Ok(Box::new(s)),
            Err(e) => Err(format!("TLS (sslQuorum): {}", crate::tls::describe(&e))),
        }
    }
}

/// A stream with bytes already read from it put back in front.
pub(crate) struct Prefixed {
    prefix: Vec<u8>,
    at: usize,
    inner: Stream,
}

impl Prefixed {
    pub(crate) fn new(prefix: Vec<u8>, inner: Stream) -> Prefixed {
        Prefixed {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = (self.prefix.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A plain TCP stream that others hold too: its owner reads and writes it
/// as a stream, and `peer_lane` writes whole frames to it from another
/// thread between the owner's writes (every operation is on `&TcpStream`).
pub(crate) struct SharedTcp(pub Arc<TcpStream>);

impl AsyncRead for SharedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            std::task::ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was stale: poll again (this registers the waker).
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Written straight to the socket: nothing held here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // The peer sees the end when the last holder drops the socket.
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn bytes_put_back_come_first() {
        let (a, mut b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut b, b"world")
            .await
            .unwrap();
        drop(b);
        let mut p = Prefixed::new(b"hello ".to_vec(), Box::new(a));
        let mut out = String::new();
        p.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }
}
