//! The AdminServer's `snapshot` and `restore` commands, as ZooKeeper
//! 3.9's (`zookeeperSnapshotAndRestore`): `GET /commands/snapshot` (alias
//! `snap`; `?streaming=false` for the headers alone) streams the state as
//! a ZooKeeper snapshot file (uncompressed, with 3.9's last processed
//! zxid), headers `last_zxid: 0x<hex>` and `snapshot_size`; `POST
//! /commands/restore` (alias `rest`) takes such a file as the body and
//! answers `{"last_zxid": N}`. Both need ALL on `/` (`admin_auth`), are
//! switched off by `admin.snapshot.enabled` / `admin.restore.enabled`
//! (503) and rate-limited by `admin.rateLimiterIntervalInMS` (429), in
//! ZooKeeper's order: authentication, switch, rate limit.
//!
//! Unlike ZooKeeper's, a restore goes through the log: the snapshot is
//! checked here, packed into one entry, and every replica applies it at
//! the same zxid (`tree::zk_restore`); the answer comes once this server
//! has applied it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

use crate::admin::{answer, unavailable};
use crate::admin_auth::{self, Asker};
use crate::config::Config;
use crate::CoreInput;

/// The largest restore body taken.
pub(crate) const MAX_BODY_BYTES: usize = 1 << 30;
/// The largest packed snapshot one log entry carries (a Raft message
/// between servers is at most 64 MiB).
const MAX_PACKED_BYTES: usize = 48 << 20;
/// How long a restore waits to be applied here.
const RESTORE_WAIT: Duration = Duration::from_secs(120);

/// What the AdminServer asks the core task for these commands.
pub(crate) enum BackupAsk {
    /// The state now, frozen (copy-on-write).
    Freeze(oneshot::Sender<Box<tree::Frozen>>),
    /// Propose the restore entry; the answer is the zxid it was applied
    /// at here, or why not.
    Restore {
        packed: Vec<u8>,
        reply: oneshot::Sender<Result<i64, String>>,
    },
}

/// ZooKeeper's `RateLimiter(1, interval)`: one call per window, the first
/// window open from the start.
struct RateLimiter {
    interval: Duration,
    reset_at: Instant,
    left: u32,
}

impl RateLimiter {
    fn new(interval: Duration) -> RateLimiter {
        RateLimiter {
            interval,
            reset_at: Instant::now(),
            left: 1,
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        if now > self.reset_at + self.interval {
            self.left = 1;
            self.reset_at = now;
        }
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}

pub(crate) struct Backup {
    core: mpsc::Sender<CoreInput>,
    cfg: Arc<Config>,
    snapshots: Mutex<RateLimiter>,
    restores: Mutex<RateLimiter>,
}

impl Backup {
    pub(crate) fn new(core: mpsc::Sender<CoreInput>, cfg: Arc<Config>) -> Backup {
        let ms = cfg.admin_rate_limiter_interval_ms;
        Backup {
            core,
            // ZooKeeper 3.9.5 gives the snapshot command's limiter the
            // interval in microseconds (then whole milliseconds of it).
            snapshots: Mutex::new(RateLimiter::new(Duration::from_millis(ms / 1000))),
            restores: Mutex::new(RateLimiter::new(Duration::from_millis(ms))),
            cfg,
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> BackupAsk) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.core.send(CoreInput::Backup(make(tx))).await.ok()?;
        rx.await.ok()
    }
}

/// `?streaming=`: Java's `Boolean.parseBoolean`, true when absent.
fn streaming(uri: &Uri) -> bool {
    crate::admin::query_param(uri, "streaming").is_none_or(|v| v.eq_ignore_ascii_case("true"))
}

pub(crate) async fn snapshot(
    State(b): State<Arc<Backup>>,
    ConnectInfo(asker): ConnectInfo<Asker>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    const CMD: &str = "snapshot";
    if let Err(r) = admin_auth::require_all_on_root(&b.core, &b.cfg, CMD, &headers, &asker).await {
        return r;
    }
    if !b.cfg.admin_snapshot_enabled {
        tracing::warn!("Snapshot command is disabled");
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            CMD,
            Some("Snapshot command is disabled (admin.snapshot.enabled)"),
            None,
        );
    }
    if !b.snapshots.lock().expect("not poisoned").allow() {
        tracing::warn!("Snapshot request was rate limited");
        return answer(
            StatusCode::TOO_MANY_REQUESTS,
            CMD,
            Some("Snapshot request was rate limited (admin.rateLimiterIntervalInMS)"),
            None,
        );
    }
    let Some(frozen) = b.ask(BackupAsk::Freeze).await else {
        return unavailable(CMD);
    };
    // Thawing and encoding walk the whole tree: off the runtime's threads.
    let encoded = tokio::task::spawn_blocking(move || {
        let sm = frozen.thaw();
        let mut snap = tree::handback::to_zookeeper(&sm);
        snap.last_processed_zxid = Some(snap.zxid);
        (snap.zxid, snap.nodes.len(), snap.encode())
    })
    .await;
    let Ok((zxid, nodes, bytes)) = encoded else {
        return answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            CMD,
            Some("encoding the snapshot failed"),
            None,
        );
    };
    tracing::info!(
        asker = %asker.ip,
        "AdminServer: snapshot at zxid 0x{zxid:x}: {nodes} znodes, {} bytes",
        bytes.len()
    );
    let headers = [
        ("last_zxid", format!("0x{zxid:x}")),
        ("snapshot_size", bytes.len().to_string()),
    ];
    if streaming(&uri) {
        let mut r = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream".to_string())],
            bytes,
        )
            .into_response();
        for (k, v) in headers {
            r.headers_mut().insert(k, v.parse().expect("ascii"));
        }
        r
    } else {
        let mut r = answer(StatusCode::OK, CMD, None, None);
        for (k, v) in headers {
            r.headers_mut().insert(k, v.parse().expect("ascii"));
        }
        r
    }
}

pub(crate) async fn restore(
    State(b): State<Arc<Backup>>,
    ConnectInfo(asker): ConnectInfo<Asker>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const CMD: &str = "restore";
    if let Err(r) = admin_auth::require_all_on_root(&b.core, &b.cfg, CMD, &headers, &asker).await {
        return r;
    }
    if !b.cfg.admin_restore_enabled {
        tracing::warn!("Restore command is disabled");
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            CMD,
            Some("Restore command is disabled (admin.restore.enabled)"),
            None,
        );
    }
    if body.is_empty() {
        return answer(
            StatusCode::BAD_REQUEST,
            CMD,
            Some("the request has no body: send a ZooKeeper snapshot file"),
            None,
        );
    }
    if !b.restores.lock().expect("not poisoned").allow() {
        tracing::warn!("Restore request was rate limited");
        return answer(
            StatusCode::TOO_MANY_REQUESTS,
            CMD,
            Some("Restore request was rate limited (admin.rateLimiterIntervalInMS)"),
            None,
        );
    }
    let checked = tokio::task::spawn_blocking(move || -> Result<_, (StatusCode, String)> {
        let (nodes, sessions, at) = tree::zk_restore::check(&body).map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("not a ZooKeeper snapshot: {e}"),
            )
        })?;
        let packed = tree::zk_restore::pack(&body);
        if packed.len() > MAX_PACKED_BYTES {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the snapshot packs to {} bytes, over the {MAX_PACKED_BYTES} one log entry carries; restore it offline instead: put it into version-2 of every server's empty dataDir (a takeover)",
                    packed.len()
                ),
            ));
        }
        Ok((nodes, sessions, at, packed))
    })
    .await;
    let (nodes, sessions, at, packed) = match checked {
        Ok(Ok(c)) => c,
        Ok(Err((status, why))) => {
            tracing::warn!(asker = %asker.ip, "AdminServer: restore refused: {why}");
            return answer(status, CMD, Some(&why), None);
        }
        Err(_) => {
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                CMD,
                Some("checking the snapshot failed"),
                None,
            )
        }
    };
    tracing::info!(
        asker = %asker.ip,
        "AdminServer: restoring a snapshot{}: {nodes} znodes, {sessions} sessions",
        at.map(|z| format!(" at zxid 0x{z:x}")).unwrap_or_default()
    );
    let asked = b.ask(|reply| BackupAsk::Restore { packed, reply });
    let done = match tokio::time::timeout(RESTORE_WAIT, asked).await {
        Ok(Some(done)) => done,
        Ok(None) => return unavailable(CMD),
        Err(_) => {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                CMD,
                Some("the restore was not applied within 120 s (no quorum?); it may still be"),
                None,
            )
        }
    };
    match done {
        Ok(zxid) => {
            let mut m = serde_json::Map::new();
            m.insert("last_zxid".into(), zxid.into());
            answer(StatusCode::OK, CMD, None, Some(m))
        }
        Err(why) => answer(StatusCode::SERVICE_UNAVAILABLE, CMD, Some(&why), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_per_window_the_first_at_once() {
        let mut r = RateLimiter::new(Duration::from_secs(3600));
        assert!(r.allow());
        assert!(!r.allow());
        let mut r = RateLimiter::new(Duration::ZERO);
        assert!(r.allow());
        std::thread::sleep(Duration::from_millis(2));
        assert!(r.allow());
    }

    #[test]
    fn streaming_unless_false() {
        for (q, want) in [
            ("/commands/snapshot", true),
            ("/commands/snapshot?streaming=true", true),
            ("/commands/snapshot?streaming=TRUE", true),
            ("/commands/snapshot?streaming=false", false),
            ("/commands/snapshot?x=1&streaming=no", false),
        ] {
            assert_eq!(streaming(&q.parse().unwrap()), want, "{q}");
        }
    }
}
