//! The thread that makes the log durable. The core task hands it Persist
//! jobs in order; it writes every job waiting at that moment with one
//! write and one fsync (group commit), then reports the newest job number
//! done. While it syncs, the core keeps taking requests: they form the
//! next batch.
//!
//! A second thread writes snapshots and runs purges, so that writing a
//! large snapshot never delays a log fsync.
//!
//! A write or fsync failure is final: it is reported and the thread stops;
//! the server exits rather than serve what it could not make durable.

use std::sync::mpsc as std_mpsc;

use raft::prelude::{Entry, HardState};

use storage::Wal;
use tokio::sync::mpsc;

/// Persist jobs queued before the core task waits for the disk.
pub(crate) const JOB_QUEUE: usize = 1024;

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
    /// written by this thread when it is idle and the link free, else
    /// handed back to the core in `Event::Persisted.unsent`.
    pub then_send: Vec<(std::sync::Arc<crate::peer_lane::Lane>, Vec<u8>)>,
}

pub(crate) enum Event {
    /// Every job up to `number` is done (durable, but for an unsynced
    /// hard state); the write and fsync took `us`
    /// microseconds, the batch's first job waited `waited_us` for this
    /// thread; done at `done_at`.
    Persisted {
        number: u64,
        /// Whether the batch was fsynced (or only written).
        synced: bool,
        us: u64,
        waited_us: u64,
        done_at: std::time::Instant,
        /// The jobs' `then_send` frames this thread did not write (it was
        /// busy, or a link had frames ahead of them), each reserved on its
        /// link (`Lane::reserve`): the core queues them, in order, with
        /// what it sends next. Empty when this thread wrote them all.
        unsent: Vec<(std::sync::Arc<crate::peer_lane::Lane>, Vec<u8>)>,
    },
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

/// The log thread counts as idle, and writes a batch's acknowledgements
/// itself, when its last fsync ended at least this long before the
/// batch's first job came and no job came during this batch's fsync.
/// One write at a time (a job every 300–400 µs) sleeps 200+ µs; under
/// load (256 writes in flight) a job waits or comes within tens of µs.
/// Written from here under load — a write on loopback runs the receiving
/// side's work too — they cost 7–15% of the throughput with 256 writes in
/// flight (a 50 µs threshold: 8%; 100 µs: none measurable), and queued
/// from here 10%.
const IDLE: std::time::Duration = std::time::Duration::from_micros(100);

pub(crate) fn spawn(
    mut wal: Wal,
    jobs: std_mpsc::Receiver<Job>,
    events: mpsc::Sender<Event>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("wal".into())
        .spawn(move || {
            // A job that came during the last fsync: the next batch starts
            // with it.
            let mut next = None;
            // When this thread last finished an fsynced batch.
            let mut idle_since = std::time::Instant::now();
            while let Some(first) = next.take().or_else(|| jobs.recv().ok()) {
                let slept = first.queued_at.saturating_duration_since(idle_since);
                // Everything already queued joins this batch: one fsync for
                // all, records in job order; the newest hard state wins.
                let waited_us = first.queued_at.elapsed().as_micros() as u64;
                let mut number = first.number;
                let mut hard_state = None;
                let mut sync = false;
                let mut then_send = Vec::new();
                let mut job = Some(first);
                let mut last_index = 0;
                while let Some(j) = job.take() {
                    last_index = j.entries.last().map_or(last_index, |e| e.index);
                    number = j.number;
                    sync |= j.sync;
                    then_send.extend(j.then_send);
                    if let Some((index, term)) = j.restart {
                        wal.stage_restart(index, term);
                    }
                    wal.stage_entries(&j.entries);
                    if j.hard_state.is_some() {
                        hard_state = j.hard_state;
                    }
                    job = jobs.try_recv().ok();
                }
                if let Some(hs) = &hard_state {
                    wal.stage_hard_state(hs);
                }
                crate::hops::hop("disk_start", last_index);
                let started = std::time::Instant::now();
                let event = match wal.commit_with(sync) {
                    Ok(()) => {
                        crate::hops::hop("disk_done", last_index);
                        let us = started.elapsed().as_micros() as u64;
                        let done_at = std::time::Instant::now();
                        // Batch when busy, not when idle (`IDLE`): idle,
                        // straight onto the link's socket, now; busy, back
                        // to the core, which queues them with what it sends
                        // next while this thread starts the next fsync. A
                        // frame dropped (full queue, link down) Raft sends
                        // again.
                        next = jobs.try_recv().ok();
                        let idle = next.is_none() && slept >= IDLE;
                        // Those that cannot go now go through the core, and
                        // so does everything after them: a frame is never
                        // written ahead of one handed over before it (a
                        // follower's forwarded client writes are among
                        // them, and the leader logs them in that order).
                        let mut unsent = Vec::new();
                        for (lane, frame) in then_send {
                            let frame = match idle && unsent.is_empty() {
                                true => match lane.try_direct(frame) {
                                    Ok(()) => continue,
                                    Err(frame) => frame,
                                },
                                false => frame,
                            };
                            // Promised now: no later direct write overtakes
                            // it on its way through the core.
                            lane.reserve();
                            unsent.push((lane, frame));
                        }
                        Event::Persisted {
                            number,
                            synced: sync,
                            us,
                            waited_us,
                            done_at,
                            unsent,
                        }
                    }
                    Err(e) => Event::Failed(e.to_string()),
                };
                let failed = matches!(event, Event::Failed(_));
                if events.blocking_send(event).is_err() || failed {
                    return;
                }
                // A batch that only moved the commit index (no fsync) does
                // not count: one write at a time sends one between every
                // two writes, close before the next write's entries.
                if sync {
                    idle_since = std::time::Instant::now();
                }
            }
        })
}
