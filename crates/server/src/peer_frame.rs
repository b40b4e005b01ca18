//! The peer protocol's frame, written and read here only: a u32 big-endian
//! length of what follows (the kind byte and the body), the u8 kind, the
//! body. Kinds: 1 a Raft message (protobuf), 2 a liveness report (u32 n,
//! n × i64 session ids), 3 a snapshot offer and 4 a snapshot chunk (see
//! `snap_transfer`), 5 where the dialer listens (its quorum and election
//! addresses, UTF-8, one line each), sent only when the acceptor asks
//! (`peer::ask_address`). A connection starts with the dialer's server id
//! (u64 BE), before any frame.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub(crate) const KIND_RAFT: u8 = 1;
pub(crate) const KIND_LIVENESS: u8 = 2;
pub(crate) const KIND_SNAP_OFFER: u8 = 3;
pub(crate) const KIND_SNAP_CHUNK: u8 = 4;
pub(crate) const KIND_ADDRESS: u8 = 5;

/// The first five bytes of a frame whose body has `body_len` bytes.
fn header(kind: u8, body_len: usize) -> [u8; 5] {
    let len = ((body_len + 1) as u32).to_be_bytes();
    [len[0], len[1], len[2], len[3], kind]
}

/// A whole frame in one buffer, its body written in place by `body` (a
/// Raft message is encoded straight after the header: no second copy).
pub(crate) fn build<E>(
    kind: u8,
    capacity: usize,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    let mut f = Vec::with_capacity(5 + capacity);
    f.extend_from_slice(&header(kind, 0));
    body(&mut f)?;
    let h = header(kind, f.len() - 5);
    f[..5].copy_from_slice(&h);
    Ok(f)
}

/// Writes a frame whose body is `parts`, without joining them first.
pub(crate) async fn write<W: AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    parts: &[&[u8]],
) -> std::io::Result<()> {
    let body_len = parts.iter().map(|p| p.len()).sum();
    w.write_all(&header(kind, body_len)).await?;
    for p in parts {
        w.write_all(p).await?;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame length {0} outside 1..={1}")]
    Length(usize, usize),
}

/// Reads the next frame into `buf`: its kind at `buf[0]`, then its body.
/// A length of zero or over `max_len` (kind byte included) is refused
/// before anything is allocated for it.
pub(crate) async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max_len: usize,
) -> Result<(), ReadError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > max_len {
        return Err(ReadError::Length(len, max_len));
    }
    buf.resize(len, 0);
    r.read_exact(buf).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn built_and_written_frames_are_the_same_bytes_and_read_back() {
        let built = build::<()>(KIND_LIVENESS, 16, |f| {
            f.extend_from_slice(b"abc");
            f.extend_from_slice(b"defg");
            Ok(())
        })
        .unwrap();
        let mut written = Vec::new();
        write(&mut written, KIND_LIVENESS, &[b"abc", b"defg"])
            .await
            .unwrap();
        assert_eq!(built, written);
        assert_eq!(built, b"\0\0\0\x08\x02abcdefg");
        let mut buf = Vec::new();
        read(&mut &written[..], &mut buf, 64).await.unwrap();
        assert_eq!(buf, b"\x02abcdefg");
        assert!(matches!(
            read(&mut &written[..], &mut buf, 7).await,
            Err(ReadError::Length(8, 7))
        ));
        assert!(matches!(
            read(&mut &b"\0\0\0\0"[..], &mut buf, 7).await,
            Err(ReadError::Length(0, 7))
        ));
    }
}
