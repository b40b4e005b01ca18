//! Servers that call in without being members — one about to join by
//! reconfig, one a reconfig removed (`node::non_voting`): how an acceptor
//! learns where such a server listens, so that it can reach it.
//!
//! The dialer never names its address unasked, so members of older builds
//! see no new bytes. An acceptor that does not know the dialer's id (and
//! lets such servers in: `reconfigEnabled`) writes one byte, `WHO`, on the
//! connection only the dialer otherwise writes on, after quorum
//! authentication if the dialer started it; the dialer answers with a frame
//! of kind 5 (`peer_frame::KIND_ADDRESS`): its quorum and election
//! addresses, one line each. A dialer of an older build closes the
//! connection on that byte, and is refused as before.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::peer::PeerAddr;
use crate::peer_frame;

/// The acceptor's question.
pub(crate) const WHO: u8 = b'?';

/// How long an acceptor waits for an unknown dialer's first bytes before
/// asking: a dialer with quorum authentication sends its magic at once; one
/// without may send nothing until it has a frame to send.
pub(crate) const QUIET: Duration = Duration::from_millis(500);

/// Frames an unknown dialer may send (votes, say) before its address.
const FRAMES_BEFORE_ADDRESS: usize = 64;

/// The largest address frame.
const MAX_ADDRESS_BYTES: usize = 1024;

/// The dialer's answer to `WHO`.
pub(crate) fn address_frame(me: &PeerAddr) -> Vec<u8> {
    let body = format!("{}\n{}", me.quorum, me.election);
    peer_frame::build(peer_frame::KIND_ADDRESS, body.len(), |f| {
        f.extend_from_slice(body.as_bytes());
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|never| match never {})
}

/// The dialer's first four bytes, or None if it sent nothing within
/// `QUIET`. Reads are cancel-safe: nothing read is lost to the deadline.
pub(crate) async fn first_bytes<S: AsyncRead + Unpin>(
    sock: &mut S,
) -> std::io::Result<Option<[u8; 4]>> {
    let mut first = [0u8; 4];
    let mut n = 0;
    let deadline = tokio::time::sleep(QUIET);
    tokio::pin!(deadline);
    while n < 4 {
        tokio::select! {
            r = sock.read(&mut first[n..]) => match r? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                k => n += k,
            },
            _ = &mut deadline, if n == 0 => return Ok(None),
        }
    }
    Ok(Some(first))
}

/// Asks the dialer `from` where it listens; frames it sent before the
/// answer are dropped (Raft resends what matters).
pub(crate) async fn ask_address<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
    from: u64,
) -> Result<PeerAddr, String> {
    sock.write_all(&[WHO])
        .await
        .map_err(|e| format!("asking server {from} where it listens: {e}"))?;
    sock.flush()
        .await
        .map_err(|e| format!("asking server {from} where it listens: {e}"))?;
    let mut buf = Vec::new();
    for _ in 0..FRAMES_BEFORE_ADDRESS {
        peer_frame::read(sock, &mut buf, super::peer::MAX_FRAME_BYTES)
            .await
            .map_err(|e| format!("server {from} did not say where it listens: {e}"))?;
        if buf[0] != peer_frame::KIND_ADDRESS {
            continue;
        }
        if buf.len() > MAX_ADDRESS_BYTES {
            return Err(format!(
                "server {from} sent an address of {} bytes",
                buf.len()
            ));
        }
        let text = std::str::from_utf8(&buf[1..])
            .map_err(|_| format!("server {from} sent an address that is not UTF-8"))?;
        let mut lines = text.lines();
        let (Some(quorum), Some(election), None) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(format!("server {from} sent a malformed address {text:?}"));
        };
        for a in [quorum, election] {
            if a.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(format!("server {from} sent a malformed address {a:?}"));
            }
        }
        return Ok(PeerAddr {
            id: from,
            quorum: quorum.to_string(),
            election: election.to_string(),
        });
    }
    Err(format!(
        "server {from} sent {FRAMES_BEFORE_ADDRESS} frames and not where it listens"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_acceptor_learns_where_an_unknown_dialer_listens() {
        let (mut acceptor, mut dialer) = tokio::io::duplex(4096);
        let me = PeerAddr {
            id: 4,
            quorum: "localhost:2891".into(),
            election: "localhost:3891".into(),
        };
        // The dialer says nothing at first: the acceptor asks.
        assert!(first_bytes(&mut acceptor).await.unwrap().is_none());
        let answer = async {
            let mut who = [0u8; 1];
            dialer.read_exact(&mut who).await.unwrap();
            assert_eq!(who[0], WHO);
            // A vote it had queued comes first; then the answer.
            peer_frame::write(&mut dialer, peer_frame::KIND_RAFT, &[b"vote"])
                .await
                .unwrap();
            dialer.write_all(&address_frame(&me)).await.unwrap();
        };
        let (asked, ()) = tokio::join!(ask_address(&mut acceptor, 4), answer);
        let asked = asked.unwrap();
        assert_eq!(
            (asked.id, asked.quorum.as_str(), asked.election.as_str()),
            (4, "localhost:2891", "localhost:3891")
        );
    }

    #[tokio::test]
    async fn a_malformed_address_is_refused() {
        for body in [
            &b"localhost:2891"[..],
            b"a:1\nb:x",
            b":1\n:2",
            b"a:1\nb:2\nc:3",
            b"\xff:1\na:2",
        ] {
            let (mut acceptor, mut dialer) = tokio::io::duplex(4096);
            peer_frame::write(&mut dialer, peer_frame::KIND_ADDRESS, &[body])
                .await
                .unwrap();
            let r = ask_address(&mut acceptor, 9).await;
            assert!(r.is_err(), "{body:?} taken: {r:?}");
        }
    }

    #[tokio::test]
    async fn bytes_that_come_are_read_whole() {
        let (mut acceptor, mut dialer) = tokio::io::duplex(4096);
        dialer.write_all(&[0, 0]).await.unwrap();
        let rest = async {
            tokio::time::sleep(QUIET * 2).await;
            dialer.write_all(&[0, 9]).await.unwrap();
        };
        let (first, ()) = tokio::join!(first_bytes(&mut acceptor), rest);
        assert_eq!(first.unwrap(), Some([0, 0, 0, 9]));
    }
}
