//! The thread that makes the log durable. The core task hands it Persist
//! jobs in order; it writes every job waiting at that moment with one
//! write and one fsync (group commit, `log_writer`), then reports the
//! newest job number done. While it syncs, the core keeps taking
//! requests: they form the next batch.
//!
//! A second thread writes snapshots and runs purges, so that writing a
//! large snapshot never delays a log fsync.
//!
//! A write or fsync failure is final: it is reported and the thread stops;
//! the server exits rather than serve what it could not make durable.

use std::sync::mpsc as std_mpsc;

use raft::prelude::{Entry, HardState};
use tokio::sync::mpsc;

use crate::log_writer::SharedLog;

/// Persist jobs queued before the core task waits for the disk.
pub(crate) const JOB_QUEUE: usize = 1024;

/// Peer frames, each with the link it goes out on.
pub(crate) type Frames = Vec<(std::sync::Arc<crate::peer_lane::Lane>, Vec<u8>)>;

pub(crate) struct Job {
    pub number: u64,
    /// A snapshot installed from the leader: the log restarts after it.
    pub restart: Option<(u64, u64)>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    /// When the core handed it over.
    pub queued_at: std::time::Instant,
    /// Must be fsynced (`node::Output::Persist`).
    pub sync: bool,
    /// Peer frames to send once the job is durable (votes, append
    /// responses, a follower's forwarded writes), each with its link:
    /// written by the job's writer (`log_writer`) when the log is idle and
    /// the link free, else handed back to the core in
    /// `Persisted.unsent`.
    pub then_send: Frames,
}

/// Every job up to `number` is done (durable, but for an unsynced hard
/// state); the write and fsync took `us` microseconds, the batch's first
/// job waited `waited_us` for its writer; done at `done_at`.
pub(crate) struct Persisted {
    pub number: u64,
    /// Whether the batch was fsynced (or only written).
    pub synced: bool,
    pub us: u64,
    pub waited_us: u64,
    pub done_at: std::time::Instant,
    /// The jobs' `then_send` frames the writer did not write (it was
    /// busy, or a link had frames ahead of them), each reserved on its
    /// link (`Lane::reserve`): the core queues them, in order, with what
    /// it sends next. Empty when the writer wrote them all.
    pub unsent: Frames,
}

pub(crate) enum Event {
    Persisted(Persisted),
    /// The snapshot at this index is durable; encoding and writing it
    /// took this many microseconds.
    Snapshotted(u64, u64),
    Failed(String),
}

pub(crate) enum SnapJob {
    /// Encode (here, off the core task) and write a snapshot.
    Write {
        meta: storage::SnapshotMeta,
        state: Box<tree::Frozen>,
    },
    /// Remove old snapshots and log segments (autopurge).
    Purge,
}

pub(crate) struct SnapDirs {
    pub data_dir: std::path::PathBuf,
    pub log_dir: std::path::PathBuf,
    pub retain: usize,
}

pub(crate) fn spawn_snapshotter(
    dirs: SnapDirs,
    jobs: std_mpsc::Receiver<SnapJob>,
    events: mpsc::Sender<Event>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("snapshot".into()).spawn(move || {
        while let Ok(job) = jobs.recv() {
            let event = match job {
                SnapJob::Write { meta, state } => {
                    let started = std::time::Instant::now();
                    // Encoded straight into the file: no copy of the whole
                    // snapshot in memory.
                    let written = storage::snap::write_with(&dirs.data_dir, &meta, |w| {
                        state.encode_snapshot_to(w)
                    });
                    drop(state);
                    match written {
                        Ok((path, len)) => {
                            tracing::info!(
                                "snapshot taken: {} ({} bytes, index {}) in {:.3} s",
                                path.display(),
                                len,
                                meta.index,
                                started.elapsed().as_secs_f64()
                            );
                            Event::Snapshotted(meta.index, started.elapsed().as_micros() as u64)
                        }
                        Err(e) => Event::Failed(format!("snapshot: {e}")),
                    }
                }
                SnapJob::Purge => match storage::snap::purge(&dirs.data_dir, &dirs.log_dir, dirs.retain) {
                    Ok(p) => {
                        tracing::info!(
                            "purge done: removed {} snapshots and {} log segments, kept the newest {}",
                            p.snapshots.len(),
                            p.segments.len(),
                            dirs.retain.max(3)
                        );
                        continue;
                    }
                    // A purge that fails leaves files behind; it loses nothing.
                    Err(e) => {
                        tracing::warn!("purge failed: {e}");
                        continue;
                    }
                },
            };
            let failed = matches!(event, Event::Failed(_));
            if events.blocking_send(event).is_err() || failed {
                return;
            }
        }
    })
}

pub(crate) fn spawn(
    log: SharedLog,
    jobs: std_mpsc::Receiver<Job>,
    events: mpsc::Sender<Event>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("wal".into())
        .spawn(move || {
            // A job that came during the last fsync: the next batch starts
            // with it.
            let mut next = None;
            while let Some(first) = next.take().or_else(|| jobs.recv().ok()) {
                // Everything already queued joins this batch.
                let written = log.lock().and_then(|mut writer| {
                    writer.write(
                        first,
                        || jobs.try_recv().ok(),
                        || {
                            next = jobs.try_recv().ok();
                            next.is_none()
                        },
                    )
                });
                let event = written.map_or_else(Event::Failed, Event::Persisted);
                let failed = matches!(event, Event::Failed(_));
                if events.blocking_send(event).is_err() || failed {
                    return;
                }
            }
        })
}
