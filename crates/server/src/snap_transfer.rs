//! Snapshot transfer between ensemble members: the leader streams its
//! newest snapshot file to a replica that needs entries it has compacted.
//!
//! It runs on a connection of its own to the peer's quorum port (so a
//! large file never delays heartbeats on the replication connection).
//! After the usual server-id greeting, in peer frames (u32 length, u8
//! kind, body):
//!
//! ```text
//! leader → replica  OFFER   u64 file size, then the Raft MsgSnapshot (protobuf)
//! replica → leader  u64     bytes of this snapshot it already holds (resume)
//! leader → replica  CHUNK   u64 offset, u32 crc32c of the data, data   (repeated)
//! replica → leader  u8      0: installed; 1: rejected (bad checksum, unreadable)
//! ```
//!
//! Every chunk is checksummed; the whole file carries its own checksum
//! (the snapshot format), verified before anything is installed. The
//! receiver keeps what it got in `<dataDir>/ferrokeeper-snap/incoming-
//! <index>-<term>.part`: when the stream breaks, the leader's next offer of
//! the same snapshot resumes where it stopped. A complete, verified file is
//! fsynced and renamed to its snapshot name (so it is durable before Raft
//! hears of it), decoded, and handed to the core with the message.

use std::path::{Path, PathBuf};
use std::time::Duration;

use protobuf::Message as PbMessage;
use raft::prelude::Message as RaftMessage;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::peer_frame::{self, KIND_SNAP_CHUNK, KIND_SNAP_OFFER};
use crate::CoreInput;

/// Bytes per chunk.
const CHUNK: usize = 1 << 20;
/// How long the receiver may take to verify and decode a whole snapshot.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub(crate) enum TransferError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(String),
}

fn protocol(s: impl Into<String>) -> TransferError {
    TransferError::Protocol(s.into())
}

/// Leader side, after the greeting: sends `file` (the snapshot `msg`
/// names) and waits for the replica's verdict. Ok(true) once installed.
pub(crate) async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
    msg: &RaftMessage,
    file: &Path,
) -> Result<bool, TransferError> {
    let mut f = tokio::fs::File::open(file).await?;
    let size = f.metadata().await?.len();
    let body = msg
        .write_to_bytes()
        .map_err(|e| protocol(format!("encode: {e}")))?;
    peer_frame::write(sock, KIND_SNAP_OFFER, &[&size.to_be_bytes(), &body]).await?;
    sock.flush().await?;
    let mut have = [0u8; 8];
    sock.read_exact(&mut have).await?;
    let mut offset = u64::from_be_bytes(have);
    if offset > size {
        return Err(protocol(format!(
            "peer claims {offset} bytes of a {size}-byte snapshot"
        )));
    }
    if offset > 0 {
        tracing::info!(
            "resuming the snapshot transfer to server {} at byte {offset} of {size}",
            msg.to
        );
    }
    use tokio::io::AsyncSeekExt;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut buf = vec![0u8; CHUNK];
    while offset < size {
        let n = ((size - offset) as usize).min(CHUNK);
        f.read_exact(&mut buf[..n]).await?;
        let crc = crc32c::crc32c(&buf[..n]);
        peer_frame::write(
            sock,
            KIND_SNAP_CHUNK,
            &[&offset.to_be_bytes(), &crc.to_be_bytes(), &buf[..n]],
        )
        .await?;
        offset += n as u64;
    }
    sock.flush().await?;
    let mut verdict = [0u8; 1];
    tokio::time::timeout(INSTALL_TIMEOUT, sock.read_exact(&mut verdict))
        .await
        .map_err(|_| protocol("the peer did not confirm the snapshot in time"))??;
    Ok(verdict[0] == 0)
}

fn part_name(index: u64, term: u64) -> String {
    format!("incoming-{index:016x}-{term:016x}.part")
}

/// Replica side: the OFFER frame's body arrived on `sock`. Receives the
/// rest, installs, and answers. Errors end the connection (the leader
/// retries, resuming from what is kept).
pub(crate) async fn receive<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
    offer: &[u8],
    data_dir: &Path,
    tree_cfg: tree::TreeConfig,
    core: &mpsc::Sender<CoreInput>,
) -> Result<(), TransferError> {
    if offer.len() < 8 {
        return Err(protocol("short snapshot offer"));
    }
    let size = u64::from_be_bytes(offer[..8].try_into().unwrap());
    let msg = RaftMessage::parse_from_bytes(&offer[8..])
        .map_err(|e| protocol(format!("undecodable snapshot offer: {e}")))?;
    let (index, term) = {
        let m = msg.get_snapshot().get_metadata();
        (m.index, m.term)
    };
    let dir = storage::snap::snap_dir(data_dir);
    tokio::fs::create_dir_all(&dir).await?;
    let part = dir.join(part_name(index, term));
    remove_other_parts(&dir, &part).await?;
    let mut f = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .await?;
    let mut have = f.metadata().await?.len();
    if have > size {
        f.set_len(0).await?;
        have = 0;
    }
    tracing::info!(
        "receiving the leader's snapshot at index {index} (term {term}, {size} bytes{})",
        if have > 0 {
            format!(", resuming at byte {have}")
        } else {
            String::new()
        }
    );
    sock.write_all(&have.to_be_bytes()).await?;
    sock.flush().await?;
    let mut buf = Vec::with_capacity(CHUNK + 16);
    while have < size {
        match peer_frame::read(sock, &mut buf, 1 + 12 + CHUNK).await {
            Err(peer_frame::ReadError::Io(e)) => return Err(e.into()),
            Err(e) => return Err(protocol(format!("bad snapshot chunk: {e}"))),
            Ok(()) if buf.len() < 1 + 12 => {
                return Err(protocol(format!("bad snapshot chunk length {}", buf.len())))
            }
            Ok(()) => {}
        }
        if buf[0] != KIND_SNAP_CHUNK {
            return Err(protocol("expected a snapshot chunk"));
        }
        let offset = u64::from_be_bytes(buf[1..9].try_into().unwrap());
        let crc = u32::from_be_bytes(buf[9..13].try_into().unwrap());
        let data = &buf[13..];
        if offset != have || crc32c::crc32c(data) != crc || have + data.len() as u64 > size {
            return Err(protocol(format!(
                "snapshot chunk at {offset} (expected {have}) failed its checks"
            )));
        }
        f.write_all(data).await?;
        // Wait for the write to land: what is kept is what a resume skips.
        f.flush().await?;
        have += data.len() as u64;
    }
    f.flush().await?;
    f.sync_all().await?;
    drop(f);
    // Verify the whole file, make it durable under its name, decode it.
    let installed = tokio::task::spawn_blocking({
        let part = part.clone();
        let dir = dir.clone();
        move || finish(&part, &dir, index, term, tree_cfg)
    })
    .await
    .map_err(|e| protocol(format!("install task: {e}")))?;
    match installed {
        Ok(state) => {
            let _ = core
                .send(CoreInput::InstallSnapshot {
                    msg: Box::new(msg),
                    state: Box::new(state),
                })
                .await;
            sock.write_all(&[0]).await?;
            sock.flush().await?;
            Ok(())
        }
        Err(why) => {
            tracing::warn!("rejected the leader's snapshot at index {index}: {why}");
            let _ = tokio::fs::remove_file(&part).await;
            sock.write_all(&[1]).await?;
            sock.flush().await?;
            Ok(())
        }
    }
}

/// A partial transfer of another snapshot is of no use any more.
async fn remove_other_parts(dir: &Path, keep: &Path) -> std::io::Result<()> {
    let mut rd = tokio::fs::read_dir(dir).await?;
    while let Some(e) = rd.next_entry().await? {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("incoming-") && name.ends_with(".part") && e.path() != keep {
            tokio::fs::remove_file(e.path()).await?;
        }
    }
    Ok(())
}

fn finish(
    part: &PathBuf,
    dir: &Path,
    index: u64,
    term: u64,
    tree_cfg: tree::TreeConfig,
) -> Result<tree::StateMachine, String> {
    let (meta, body) = storage::snap::read(part).map_err(|e| e.to_string())?;
    if meta.index != index || meta.term != term {
        return Err(format!(
            "the file holds index {} term {}, the offer said {index} {term}",
            meta.index, meta.term
        ));
    }
    let state = tree::StateMachine::decode_snapshot(&body, tree_cfg)
        .map_err(|e| format!("undecodable state: {e}"))?;
    drop(body);
    let dest = dir.join(storage::snap::file_name(index));
    std::fs::rename(part, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::prelude::{ConfState, MessageType};

    fn offer_msg(index: u64, term: u64) -> RaftMessage {
        let mut m = RaftMessage::default();
        m.set_msg_type(MessageType::MsgSnapshot);
        m.from = 1;
        m.to = 2;
        let md = m.mut_snapshot().mut_metadata();
        md.index = index;
        md.term = term;
        md.set_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
        m
    }

    /// A leader snapshot file with a few thousand znodes (several chunks).
    fn leader_file(dir: &Path) -> (PathBuf, tree::StateMachine) {
        let mut sm = tree::StateMachine::new(tree::TreeConfig::default());
        let big = tree::Entry {
            time_ms: 1,
            session_id: 0,
            xid: 0,
            origin: 0,
            conn: 0,
            kind: tree::EntryKind::CreateSession {
                timeout_ms: 30_000,
                passwd: vec![1; 16],
            },
        };
        sm.apply(1, &big);
        let session_id = *sm.sessions.keys().next().expect("session created");
        for i in 2..3000i64 {
            let req = proto::Request::Create(
                proto::OpCode::Create,
                proto::CreateTtlRequest {
                    path: format!("/n{i}"),
                    // Random: the snapshot file is compressed, and must
                    // still span several chunks.
                    data: Some({
                        use rand::{RngCore, SeedableRng};
                        let mut d = vec![0u8; 1000];
                        rand::rngs::StdRng::seed_from_u64(i as u64).fill_bytes(&mut d);
                        d
                    }),
                    acl: tree::acl::open_acl_unsafe(),
                    flags: 0,
                    ttl: -1,
                },
            );
            let mut body = Vec::new();
            req.encode(&mut body);
            let e = tree::Entry {
                time_ms: 1,
                session_id,
                xid: 0,
                origin: 0,
                conn: 0,
                kind: tree::EntryKind::Request {
                    op: proto::OpCode::Create,
                    body,
                    auth: vec![],
                },
            };
            sm.apply(i, &e);
        }
        let meta = storage::SnapshotMeta {
            index: 2999,
            term: 4,
            conf_state: ConfState::from((vec![1, 2, 3], vec![])),
        };
        let p = storage::snap::write(dir, &meta, &sm.encode_snapshot()).unwrap();
        (p, sm)
    }

    /// Cuts the stream after `limit` bytes from the leader.
    struct Cut<S> {
        inner: S,
        left: usize,
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Cut<S> {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            if self.left == 0 {
                return std::task::Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
            }
            let n = buf.len().min(self.left);
            let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, &buf[..n]);
            if let std::task::Poll::Ready(Ok(k)) = &r {
                self.left -= k;
            }
            r
        }
        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Cut<S> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    async fn receiver(
        mut sock: tokio::io::DuplexStream,
        data_dir: PathBuf,
        core: mpsc::Sender<CoreInput>,
    ) -> Result<(), TransferError> {
        let mut len = [0u8; 4];
        sock.read_exact(&mut len).await?;
        let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
        sock.read_exact(&mut buf).await?;
        assert_eq!(buf[0], KIND_SNAP_OFFER);
        receive(
            &mut sock,
            &buf[1..],
            &data_dir,
            tree::TreeConfig::default(),
            &core,
        )
        .await
    }

    #[tokio::test]
    async fn a_broken_transfer_resumes_and_installs_the_same_state() {
        let leader = tempfile::tempdir().unwrap();
        let follower = tempfile::tempdir().unwrap();
        let (file, sm) = leader_file(leader.path());
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(size > 2 * CHUNK as u64, "several chunks: {size}");
        let (core_tx, mut core_rx) = mpsc::channel(4);

        // First attempt: the link breaks after 1.5 chunks.
        let (a, b) = tokio::io::duplex(64 << 10);
        let mut cut = Cut {
            inner: a,
            left: CHUNK + CHUNK / 2,
        };
        let r = tokio::spawn(receiver(b, follower.path().to_path_buf(), core_tx.clone()));
        let sent = send(&mut cut, &offer_msg(2999, 4), &file).await;
        assert!(sent.is_err(), "the cut link fails the send");
        drop(cut);
        assert!(r.await.unwrap().is_err(), "the receiver saw the break");
        let part = storage::snap::snap_dir(follower.path()).join(part_name(2999, 4));
        let kept = std::fs::metadata(&part).unwrap().len();
        assert!(kept > 0 && kept < size, "a partial file is kept: {kept}");
        assert!(core_rx.try_recv().is_err(), "nothing installed yet");

        // Second attempt resumes at what was kept, and installs.
        let (mut a, b) = tokio::io::duplex(64 << 10);
        let r = tokio::spawn(receiver(b, follower.path().to_path_buf(), core_tx.clone()));
        assert!(send(&mut a, &offer_msg(2999, 4), &file).await.unwrap());
        r.await.unwrap().unwrap();
        match core_rx.recv().await.unwrap() {
            CoreInput::InstallSnapshot { msg, state } => {
                assert_eq!(msg.get_snapshot().get_metadata().index, 2999);
                assert_eq!(state.tree.digest(), sm.tree.digest());
                assert_eq!(state.last_zxid(), 2999);
            }
            _ => panic!("expected an install"),
        }
        // Durable under its snapshot name, byte for byte the leader's file.
        let dest = storage::snap::snap_dir(follower.path()).join(storage::snap::file_name(2999));
        assert_eq!(std::fs::read(&dest).unwrap(), std::fs::read(&file).unwrap());
        assert!(!part.exists());
    }

    #[tokio::test]
    async fn a_corrupt_partial_file_is_rejected_not_installed() {
        let leader = tempfile::tempdir().unwrap();
        let follower = tempfile::tempdir().unwrap();
        let (file, _) = leader_file(leader.path());
        // A partial file whose bytes differ from the leader's (as after a
        // crash that left garbage): the whole-file checksum catches it.
        let dir = storage::snap::snap_dir(follower.path());
        std::fs::create_dir_all(&dir).unwrap();
        let mut garbage = std::fs::read(&file).unwrap();
        garbage.truncate(CHUNK);
        garbage[100] ^= 0xff;
        std::fs::write(dir.join(part_name(2999, 4)), &garbage).unwrap();
        let (core_tx, mut core_rx) = mpsc::channel(4);
        let (mut a, b) = tokio::io::duplex(64 << 10);
        let r = tokio::spawn(receiver(b, follower.path().to_path_buf(), core_tx));
        assert!(!send(&mut a, &offer_msg(2999, 4), &file).await.unwrap());
        r.await.unwrap().unwrap();
        assert!(core_rx.try_recv().is_err(), "nothing installed");
        assert!(
            !dir.join(part_name(2999, 4)).exists(),
            "the bad part is gone"
        );
        assert!(!dir.join(storage::snap::file_name(2999)).exists());
    }
}
