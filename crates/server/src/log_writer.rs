//! Writing Persist jobs to the log: a batch of jobs with one write and one
//! fsync (group commit), then the frames they hold back (`Job.then_send`).
//! The log thread (`storage_thread`) writes every batch but one kind: a
//! follower's job that finds the log idle, which the core task writes
//! itself (`CoreTask::persist_inline`), sparing the path of a lone write
//! the log thread's wake-up. Both hold the writer behind one mutex, which
//! is never contended: the core writes only when no job is with the
//! thread.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use storage::Wal;

use crate::storage_thread::{Job, Persisted};

/// The log counts as idle, and a batch's frames are written at once by
/// whoever wrote it, when the last fsync ended at least this long before
/// the batch's first job came and no job came during this batch's fsync.
/// One write at a time (a job every 300–400 µs) sleeps 200+ µs; under
/// load (256 writes in flight) a job waits or comes within tens of µs.
/// Written from the log thread under load — a write on loopback runs the
/// receiving side's work too — they cost 7–15% of the throughput with 256
/// writes in flight (a 50 µs threshold: 8%; 100 µs: none measurable), and
/// queued from there 10%.
const IDLE: Duration = Duration::from_micros(100);

pub(crate) struct LogWriter {
    wal: Wal,
    /// When the last fsynced batch ended.
    idle_since: Instant,
}

/// The log's writer, shared by the log thread and the core task.
#[derive(Clone)]
pub(crate) struct SharedLog(Arc<Mutex<LogWriter>>);

impl SharedLog {
    pub(crate) fn new(wal: Wal) -> SharedLog {
        SharedLog(Arc::new(Mutex::new(LogWriter {
            wal,
            idle_since: Instant::now(),
        })))
    }

    /// The writer; Err when a thread panicked holding it (what it wrote
    /// is unknown: the server must not go on).
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, LogWriter>, String> {
        self.0
            .lock()
            .map_err(|_| "the log writer panicked mid-batch".to_string())
    }

    /// The writer if no one holds it now.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, LogWriter>> {
        self.0.try_lock().ok()
    }
}

impl LogWriter {
    /// Whether a job handed over at `at` finds the log idle (`IDLE`).
    pub(crate) fn idle_at(&self, at: Instant) -> bool {
        at.saturating_duration_since(self.idle_since) >= IDLE
    }

    /// Writes `first` and every job `more` yields after it, in order, with
    /// one write and — if any job asks — one fsync; the newest hard state
    /// wins. Once durable, `quiet` says whether nothing came meanwhile:
    /// then, if the log was idle when `first` came, the frames go straight
    /// onto their links' sockets; the rest, and everything after the first
    /// that cannot, are reserved on their links and returned in
    /// `Persisted.unsent` for the core to queue, in order. Err: the write
    /// or fsync failed (the log is poisoned).
    pub(crate) fn write(
        &mut self,
        first: Job,
        mut more: impl FnMut() -> Option<Job>,
        quiet: impl FnOnce() -> bool,
    ) -> Result<Persisted, String> {
        let was_idle = self.idle_at(first.queued_at);
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
                self.wal.stage_restart(index, term);
            }
            self.wal.stage_entries(&j.entries);
            if j.hard_state.is_some() {
                hard_state = j.hard_state;
            }
            job = more();
        }
        if let Some(hs) = &hard_state {
            self.wal.stage_hard_state(hs);
        }
        crate::hops::hop("disk_start", last_index);
        let started = Instant::now();
        self.wal.commit_with(sync).map_err(|e| e.to_string())?;
        crate::hops::hop("disk_done", last_index);
        let us = started.elapsed().as_micros() as u64;
        let done_at = Instant::now();
        // A batch that only moved the commit index (no fsync) does not
        // count: one write at a time sends one between every two writes,
        // close before the next write's entries.
        if sync {
            self.idle_since = done_at;
        }
        // Batch when busy, not when idle: idle, straight onto the link's
        // socket, now; busy, back to the core, which queues them with what
        // it sends next while the log thread starts the next fsync. A
        // frame dropped (full queue, link down) Raft sends again.
        let idle = quiet() && was_idle;
        // Those that cannot go now go through the core, and so does
        // everything after them: a frame is never written ahead of one
        // handed over before it (a follower's forwarded client writes are
        // among them, and the leader logs them in that order).
        let mut unsent = Vec::new();
        for (lane, frame) in then_send {
            let frame = match idle && unsent.is_empty() {
                true => match lane.try_direct(frame) {
                    Ok(()) => continue,
                    Err(frame) => frame,
                },
                false => frame,
            };
            // Promised now: no later direct write overtakes it on its way
            // through the core.
            lane.reserve();
            unsent.push((lane, frame));
        }
        Ok(Persisted {
            number,
            synced: sync,
            us,
            waited_us,
            done_at,
            unsent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_lane::Lane;
    use crate::storage_thread::Frames;
    use raft::prelude::Entry;
    use tokio::io::AsyncReadExt;
    use tokio::sync::mpsc;

    fn job(number: u64, index: u64, frame: &[u8], lane: &Arc<Lane>) -> Job {
        let e = Entry {
            index,
            term: 1,
            data: vec![index as u8; 10].into(),
            ..Default::default()
        };
        Job {
            number,
            restart: None,
            entries: vec![e],
            hard_state: None,
            queued_at: Instant::now(),
            sync: true,
            then_send: vec![(lane.clone(), frame.to_vec())],
        }
    }

    /// The batch's newest job and the frames handed back (reserved on
    /// their lane).
    fn handed_back(written: Result<Persisted, String>) -> (u64, Frames) {
        let p = written.expect("the write succeeds");
        (p.number, p.unsent)
    }

    fn frames(back: &Frames) -> Vec<&[u8]> {
        back.iter().map(|(_, f)| &f[..]).collect()
    }

    /// What the core and then the link's writer task do with frames
    /// handed back: queue them, take them, write them (here: drop them).
    fn through_the_writer_task(back: Frames, rx: &mut mpsc::Receiver<Vec<u8>>) {
        let n = back.len();
        for (lane, frame) in back {
            assert!(lane.queue_reserved(frame.clone()));
            assert_eq!(rx.try_recv().unwrap(), frame);
            lane.idle(1);
        }
        assert!(n > 0);
    }

    #[tokio::test]
    async fn an_idle_log_sends_at_once_a_busy_one_hands_frames_back_and_all_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), storage::WalOptions::default()).unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let lane = Arc::new(Lane::new(tx));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ours = tokio::net::TcpStream::connect(l.local_addr().unwrap())
            .await
            .unwrap();
        let (mut theirs, _) = l.accept().await.unwrap();
        lane.up(Some(Arc::new(ours)));
        // Handed over before the log opened: not idle. (Each job that must
        // find the log busy is made before the write it follows ends.)
        let first = job(1, 1, b"a1", &lane);
        let log = SharedLog::new(wal);
        let w = || log.try_lock().expect("nobody holds it");
        let (n, back) = handed_back(w().write(first, || None, || true));
        assert_eq!((n, frames(&back)), (1, vec![&b"a1"[..]]));
        through_the_writer_task(back, &mut rx);
        // Idle, and nothing came during the fsync: straight onto the socket.
        std::thread::sleep(IDLE * 2);
        let (n, back) = handed_back(w().write(job(2, 2, b"a2", &lane), || None, || true));
        assert_eq!((n, back.len()), (2, 0));
        let mut got = [0u8; 2];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"a2");
        assert!(rx.try_recv().is_err(), "not queued");
        // Idle, but a job came during the fsync: handed back.
        std::thread::sleep(IDLE * 2);
        let next = job(4, 4, b"a4", &lane);
        let (_, back) = handed_back(w().write(job(3, 3, b"a3", &lane), || None, || false));
        assert_eq!(frames(&back), vec![&b"a3"[..]]);
        through_the_writer_task(back, &mut rx);
        // Came during the last fsync: not idle. Two jobs, one batch.
        let mut more = Some(job(5, 5, b"a5", &lane));
        let (n, back) = handed_back(w().write(next, || more.take(), || true));
        assert_eq!((n, frames(&back)), (5, vec![&b"a4"[..], &b"a5"[..]]));
        // Promised while handed back, and not yet queued by the core: a
        // later batch, idle as it may be, does not overtake them.
        std::thread::sleep(IDLE * 2);
        let (_, later) = handed_back(w().write(job(6, 6, b"a6", &lane), || None, || true));
        assert_eq!(
            frames(&later),
            vec![&b"a6"[..]],
            "frames still ahead on the link"
        );
        through_the_writer_task(back, &mut rx);
        through_the_writer_task(later, &mut rx);
        let got = storage::wal::read_live(dir.path()).unwrap();
        let indexes: Vec<u64> = got.entries.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![1, 2, 3, 4, 5, 6]);
    }
}
