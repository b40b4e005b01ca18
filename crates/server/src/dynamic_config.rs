//! ZooKeeper's dynamic config files, as ZooKeeper 3.5+ keeps them when
//! `reconfigEnabled` is on: at startup a copy of zoo.cfg as it was
//! (`zoo.cfg.bak`); after each reconfig this server applies, the new
//! membership in `zoo.cfg.dynamic.<version>` (its `server.N=` lines
//! sorted as text, no version line, no trailing newline) and zoo.cfg
//! rewritten without its `server.N`, `group`, `weight`, `peerType` and
//! old `dynamicConfigFile` lines (and without `clientPort` /
//! `clientPortAddress` when this server's new line names its client
//! port), pointing at the new file. A restarted server — ferrokeeper or
//! ZooKeeper — comes back with the membership it last had.

use std::io::Write;
use std::path::{Path, PathBuf};

use proto::members::Members;

/// `zoo.cfg.bak`, once per start, as ZooKeeper's `backupOldConfig`: when
/// reconfig is on, the server is an ensemble member and zoo.cfg holds the
/// membership itself (no `dynamicConfigFile` yet).
pub(crate) fn backup_static(cfg: &crate::config::Config) -> std::io::Result<()> {
    if !cfg.reconfig_enabled || !cfg.distributed() || cfg.dynamic_config_file.is_some() {
        return Ok(());
    }
    let text = std::fs::read(&cfg.path)?;
    write_atomic(&with_suffix(&cfg.path, ".bak"), &text)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes `bytes` to `path` by a durable rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = with_suffix(path, ".tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The dynamic file's text: the server lines sorted as text.
fn dynamic_text(m: &Members) -> String {
    let mut lines: Vec<String> = m
        .servers
        .iter()
        .map(|(id, s)| format!("server.{id}={}", s.render()))
        .collect();
    lines.sort();
    lines.join("\n")
}

/// zoo.cfg without the membership and with the pointer to `dynamic`.
fn edited_static(text: &str, dynamic: &Path, erase_client: bool) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let key = line.split_once('=').map_or(line, |(k, _)| k).trim();
        let membership = [
            "server.",
            "group",
            "weight",
            "dynamicConfigFile",
            "peerType",
        ]
        .iter()
        .any(|p| key.starts_with(p));
        let client = erase_client && key.starts_with("clientPort");
        if membership || client {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("dynamicConfigFile={}\n", dynamic.display()));
    out
}

/// Writes `<zoo.cfg>.dynamic.<version>` for the membership `text`
/// (`/zookeeper/config`'s) and points zoo.cfg at it: after a reconfig,
/// and at the first start with reconfig on (the config files' own
/// membership, version 0, when zoo.cfg has no `dynamicConfigFile` yet —
/// ZooKeeper converts at its first election). Nothing for a version
/// already written. Returns the file written.
pub(crate) fn write(
    cfg_path: &Path,
    has_dynamic: bool,
    my_id: u64,
    text: &str,
) -> Result<Option<PathBuf>, String> {
    let m = Members::parse(text).map_err(|e| format!("the new membership: {e}"))?;
    if m.version == 0 && has_dynamic {
        return Ok(None);
    }
    let dynamic = with_suffix(cfg_path, &format!(".dynamic.{:x}", m.version));
    if dynamic.exists() {
        return Ok(None);
    }
    write_atomic(&dynamic, dynamic_text(&m).as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", dynamic.display()))?;
    let dynamic = std::fs::canonicalize(&dynamic).unwrap_or(dynamic);
    let old = std::fs::read_to_string(cfg_path)
        .map_err(|e| format!("cannot read {}: {e}", cfg_path.display()))?;
    let erase_client = m.servers.get(&my_id).is_some_and(|s| s.client.is_some());
    write_atomic(
        cfg_path,
        edited_static(&old, &dynamic, erase_client).as_bytes(),
    )
    .map_err(|e| format!("cannot rewrite {}: {e}", cfg_path.display()))?;
    Ok(Some(dynamic))
}

/// Sets `key=value` in zoo.cfg for each pair: the key's line replaced
/// where it is, or added at the end.
pub(crate) fn set_keys(cfg_path: &Path, pairs: &[(&str, &str)]) -> std::io::Result<()> {
    let old = std::fs::read_to_string(cfg_path)?;
    let mut out = String::new();
    let mut left: Vec<&(&str, &str)> = pairs.iter().collect();
    for line in old.lines() {
        let key = line.split_once('=').map_or(line, |(k, _)| k).trim();
        match left.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                let (k, v) = left.remove(i);
                out.push_str(&format!("{k}={v}\n"));
            }
            None if pairs.iter().any(|(k, _)| *k == key) => {}
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (k, v) in left {
        out.push_str(&format!("{k}={v}\n"));
    }
    write_atomic(cfg_path, out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_keys_in_place_or_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            "a=1\nreconfigEnabled=false\n# c\nreconfigEnabled = x\nb=2\n",
        )
        .unwrap();
        set_keys(
            &cfg,
            &[("standaloneEnabled", "false"), ("reconfigEnabled", "true")],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&cfg).unwrap(),
            "a=1\nreconfigEnabled=true\n# c\nb=2\nstandaloneEnabled=false\n"
        );
    }

    #[test]
    fn the_first_start_converts_zoo_cfg() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(&cfg, "clientPort=2181\nserver.1=h:1:2\nserver.2=h:3:4\n").unwrap();
        let text = "server.1=h:1:2:participant\nserver.2=h:3:4:participant\nversion=0";
        let file = write(&cfg, false, 1, text).unwrap().unwrap();
        assert!(file.ends_with("zoo.cfg.dynamic.0"));
        let now = std::fs::read_to_string(&cfg).unwrap();
        assert!(
            now.starts_with("clientPort=2181\ndynamicConfigFile="),
            "{now}"
        );
    }

    #[test]
    fn writes_what_zookeeper_writes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            "tickTime=2000\n# a comment\nclientPort=2181\nserver.1=localhost:2888:3888\nserver.2=localhost:2889:3889\npeerType=participant\n",
        )
        .unwrap();
        let text = "server.1=localhost:2888:3888:participant\nserver.2=localhost:2889:3889:participant\nserver.100=0.0.0.0:1:2:observer;0.0.0.0:3\nversion=2a";
        let file = write(&cfg, false, 1, text).unwrap().unwrap();
        assert!(file.ends_with("zoo.cfg.dynamic.2a"));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            // Sorted as text, as ZooKeeper sorts them: "server.100=" < "server.1=".
            "server.100=0.0.0.0:1:2:observer;0.0.0.0:3\nserver.1=localhost:2888:3888:participant\nserver.2=localhost:2889:3889:participant"
        );
        assert_eq!(
            std::fs::read_to_string(&cfg).unwrap(),
            format!(
                "tickTime=2000\n# a comment\nclientPort=2181\ndynamicConfigFile={}\n",
                file.display()
            )
        );
        // The same version again: nothing to do.
        assert!(write(&cfg, true, 1, text).unwrap().is_none());
        // The config files' own membership once zoo.cfg points at a
        // dynamic file: nothing either.
        assert!(write(&cfg, true, 1, "server.1=a:1:2\nversion=0")
            .unwrap()
            .is_none());
        // This server's line names its client port: clientPort goes.
        let text = "server.1=localhost:2888:3888:participant;127.0.0.1:2181\nserver.2=localhost:2889:3889:participant\nversion=2b";
        write(&cfg, true, 1, text).unwrap().unwrap();
        let now = std::fs::read_to_string(&cfg).unwrap();
        assert!(!now.contains("clientPort"), "{now}");
        assert!(now.ends_with("zoo.cfg.dynamic.2b\n"), "{now}");
    }
}
