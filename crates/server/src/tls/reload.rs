//! Certificate reload without a restart (ZooKeeper 3.9's
//! `client.certReload`, on here unless set to false): the files of the key
//! and trust stores (and their password files) are looked at every
//! `POLL`; once a change has settled, the acceptor is built anew and
//! replaces the old one for the connections that come after. A store that
//! cannot be used keeps the old acceptor, with a log line saying why.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use super::{Acceptor, TlsSettings};

const POLL: Duration = Duration::from_secs(2);

/// The acceptor new connections use.
pub struct Current(RwLock<Arc<Acceptor>>);

impl Current {
    pub fn new(a: Acceptor) -> Arc<Current> {
        Arc::new(Current(RwLock::new(Arc::new(a))))
    }

    pub fn get(&self) -> Arc<Acceptor> {
        self.0.read().expect("acceptor lock").clone()
    }

    fn set(&self, a: Acceptor) {
        *self.0.write().expect("acceptor lock") = Arc::new(a);
    }
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

pub async fn watch(
    current: Arc<Current>,
    settings: TlsSettings,
    mut stop: broadcast::Receiver<()>,
) {
    let files: Vec<PathBuf> = [
        &settings.ssl.key_store.location,
        &settings.ssl.key_store.password_path,
        &settings.ssl.trust_store.location,
        &settings.ssl.trust_store.password_path,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
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
        match Acceptor::new(&settings) {
            Ok(a) => {
                current.set(a);
                tracing::info!("TLS: the certificate files changed; new connections use them");
            }
            Err(e) => tracing::error!(
                "TLS: the certificate files changed but cannot be used ({e}); new connections keep the previous ones"
            ),
        }
    }
}
