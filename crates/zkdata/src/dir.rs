//! Finding a ZooKeeper server's files and choosing what ZooKeeper would
//! load at startup (`FileTxnSnapLog.restore`): the newest snapshot that
//! reads cleanly (an unreadable one is passed over for the next older, as
//! ZooKeeper does, and reported), then every logged transaction after the
//! snapshot's zxid, in order, from the log file that holds it onwards.

use crate::snapshot::ZkSnapshot;
use crate::txn::TxnEntry;
use crate::txnlog::{LogEnd, TxnLogFile};
use crate::{zxid_from_name, ZkError};
use std::path::{Path, PathBuf};

/// ZooKeeper keeps its files in a `version-2` folder of dataDir
/// (snapshots) and of dataLogDir (logs).
#[derive(Debug, Clone)]
pub struct ZkDirs {
    pub snap_dir: PathBuf,
    pub log_dir: PathBuf,
}

/// The files found, newest snapshot first, logs oldest first.
#[derive(Debug, Default)]
pub struct Found {
    pub snapshots: Vec<(i64, PathBuf)>,
    pub logs: Vec<(i64, PathBuf)>,
}

impl Found {
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty() && self.logs.is_empty()
    }
}

/// What ZooKeeper would restore.
#[derive(Debug)]
pub struct Loaded {
    pub snapshot_path: PathBuf,
    pub snapshot: ZkSnapshot,
    /// Newer snapshots that could not be read, and why.
    pub skipped_snapshots: Vec<ZkError>,
    /// The log files read, in order.
    pub log_files: Vec<PathBuf>,
    /// Every transaction after the snapshot's zxid, in zxid order.
    pub txns: Vec<TxnEntry>,
    /// Log files whose last record was cut short, and where.
    pub torn: Vec<(PathBuf, u64)>,
}

impl Loaded {
    /// The zxid ZooKeeper would continue from: its last transaction's.
    pub fn last_zxid(&self) -> i64 {
        self.txns
            .last()
            .map_or(self.snapshot.zxid, |t| t.header.zxid)
    }
}

impl ZkDirs {
    /// The folders of a server whose zoo.cfg says `data_dir` and `log_dir`.
    pub fn new(data_dir: &Path, log_dir: &Path) -> ZkDirs {
        ZkDirs {
            snap_dir: data_dir.join("version-2"),
            log_dir: log_dir.join("version-2"),
        }
    }

    pub fn find(&self) -> Result<Found, ZkError> {
        let mut found = Found {
            snapshots: list(&self.snap_dir, "snapshot")?,
            logs: list(&self.log_dir, "log")?,
        };
        found.snapshots.sort_by_key(|s| std::cmp::Reverse(s.0));
        found.logs.sort_by_key(|l| l.0);
        Ok(found)
    }

    /// Loads what ZooKeeper would: `Ok(None)` when there are no ZooKeeper
    /// files at all.
    pub fn load(&self) -> Result<Option<Loaded>, ZkError> {
        let found = self.find()?;
        if found.is_empty() {
            return Ok(None);
        }
        let mut skipped = Vec::new();
        let mut chosen = None;
        for (_, path) in &found.snapshots {
            match ZkSnapshot::read(path) {
                Ok(s) => {
                    chosen = Some((path.clone(), s));
                    break;
                }
                Err(e) => skipped.push(e),
            }
        }
        let Some((snapshot_path, snapshot)) = chosen else {
            let why = match skipped.pop() {
                Some(e) => format!("no readable snapshot ({e})"),
                None => "transaction logs but no snapshot; ZooKeeper refuses to start on that too"
                    .into(),
            };
            return Err(ZkError::corrupt(&self.snap_dir, 0, why));
        };
        // The log file holding the first transaction after the snapshot
        // is the last one named at or below it; every later one follows.
        let from = found
            .logs
            .iter()
            .rposition(|(z, _)| *z <= snapshot.zxid)
            .unwrap_or(0);
        let mut log_files = Vec::new();
        let mut txns: Vec<TxnEntry> = Vec::new();
        let mut torn = Vec::new();
        for (_, path) in &found.logs[from..] {
            let f = TxnLogFile::read(path)?;
            if let LogEnd::Torn { offset } = f.end {
                torn.push((path.clone(), offset));
            }
            for e in f.entries {
                let last = txns.last().map_or(snapshot.zxid, |t| t.header.zxid);
                if e.header.zxid <= last {
                    // Up to the snapshot's zxid (or repeated): already in.
                    continue;
                }
                txns.push(e);
            }
            log_files.push(path.clone());
        }
        Ok(Some(Loaded {
            snapshot_path,
            snapshot,
            skipped_snapshots: skipped,
            log_files,
            txns,
            torn,
        }))
    }
}

fn list(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, ZkError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ZkError::Io {
                path: dir.to_owned(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|source| ZkError::Io {
            path: dir.to_owned(),
            source,
        })?;
        if let Some(z) = e
            .file_name()
            .to_str()
            .and_then(|n| zxid_from_name(n, prefix))
        {
            out.push((z, e.path()));
        }
    }
    Ok(out)
}
