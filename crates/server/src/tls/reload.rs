//! Certificate reload without a restart (ZooKeeper 3.9's
//! `client.certReload` for the client port, `sslQuorumReloadCertFiles`
//! between servers; on here unless set to false): the files of the key and
//! trust stores (and their password files) are looked at every `POLL`;
//! once a change has settled, what uses them is built anew and replaces
//! the old for the connections that come after. Stores that cannot be
//! used keep the old, with a log line saying why.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use super::settings::SslSettings;

const POLL: Duration = Duration::from_secs(2);

/// What new connections use (an acceptor, the peers' TLS), replaced
/// whole when the certificate files change.
pub struct Current<T>(RwLock<Arc<T>>);

impl<T> Current<T> {
    pub fn new(t: T) -> Arc<Current<T>> {
        Arc::new(Current(RwLock::new(Arc::new(t))))
    }

    pub fn get(&self) -> Arc<T> {
        self.0.read().expect("tls lock").clone()
    }

    pub fn set(&self, t: T) {
        *self.0.write().expect("tls lock") = Arc::new(t);
    }
}

/// The files of one `SslSettings`' stores.
pub fn files(s: &SslSettings) -> Vec<PathBuf> {
    [
        &s.key_store.location,
        &s.key_store.password_path,
        &s.trust_store.location,
        &s.trust_store.password_path,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect()
}

/// What the files look like now: modification time and length of each.
fn stamp(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok()?;
            Some((m.modified().ok()?, m.len()))
        })
        .collect()
}

/// Watches `files`; once a change has settled, `rebuild` makes and puts
/// in place what uses them (`what` names it in the log).
pub async fn watch<F>(
    what: &'static str,
    files: Vec<PathBuf>,
    rebuild: F,
    mut stop: broadcast::Receiver<()>,
) where
    F: Fn() -> Result<(), String> + Send + 'static,
{
    let mut loaded = stamp(&files);
    let mut seen = loaded.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.recv() => return,
        }
        let now = stamp(&files);
        // Reload once a change has settled: the same look twice in a row,
        // so a file being written is not read half done.
        let settled = now == seen;
        seen = now.clone();
        if !settled || now == loaded {
            continue;
        }
        loaded = now;
        match rebuild() {
            Ok(()) => tracing::info!(
                "TLS ({what}): the certificate files changed; new connections use them"
            ),
            Err(e) => tracing::error!(
                "TLS ({what}): the certificate files changed but cannot be used ({e}); new connections keep the previous ones"
            ),
        }
    }
}
