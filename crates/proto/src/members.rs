//! The ensemble's membership as ZooKeeper writes it: `server.N` specs
//! (`host:quorumPort:electionPort[:participant|observer][;[clientAddr:]clientPort]`),
//! the text `/zookeeper/config` holds (one `server.N=…` line per member in
//! id order, then `version=<hex>`), and what a `reconfig` request makes of
//! a membership (incremental `joining`/`leaving`, or a whole new
//! `newMembers`), with ZooKeeper's BadArguments cases.
//!
//! Not here: who may reconfig and whether a quorum is there (`node`), the
//! config files (`server`).

use std::collections::BTreeMap;

/// One member: where it listens and whether it votes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub observer: bool,
    /// `;[addr:]port`: where it serves clients, when the line says.
    pub client: Option<(Option<String>, u16)>,
}

impl ServerSpec {
    /// Parses the value of a `server.N=` line.
    pub fn parse(v: &str) -> Result<ServerSpec, String> {
        let v = v.trim();
        let (addr, client) = match v.split_once(';') {
            Some((a, c)) => (a, Some(c.trim())),
            None => (v, None),
        };
        let parts: Vec<&str> = addr.split(':').collect();
        if parts.len() < 3 || parts.len() > 4 || parts[0].is_empty() {
            return Err("expected host:quorumPort:electionPort[:participant|observer][;[clientAddr:]clientPort]".into());
        }
        let port = |s: &str| s.parse::<u16>().map_err(|_| format!("invalid port '{s}'"));
        let observer = match parts.get(3) {
            None | Some(&"participant") => false,
            Some(&"observer") => true,
            Some(r) => {
                return Err(format!(
                    "invalid role '{r}': expected participant or observer"
                ))
            }
        };
        let client = match client {
            None => None,
            Some(c) => match c.rsplit_once(':') {
                Some((a, p)) if !a.is_empty() => Some((Some(a.to_string()), port(p)?)),
                Some((_, p)) => Some((None, port(p)?)),
                None => Some((None, port(c)?)),
            },
        };
        Ok(ServerSpec {
            host: parts[0].into(),
            quorum_port: port(parts[1])?,
            election_port: port(parts[2])?,
            observer,
            client,
        })
    }

    /// As ZooKeeper's `QuorumServer.toString`: the role always, the client
    /// address as `0.0.0.0` when only a port was given.
    pub fn render(&self) -> String {
        let role = if self.observer {
            "observer"
        } else {
            "participant"
        };
        let mut s = format!(
            "{}:{}:{}:{role}",
            self.host, self.quorum_port, self.election_port
        );
        if let Some((addr, port)) = &self.client {
            s.push_str(&format!(";{}:{port}", addr.as_deref().unwrap_or("0.0.0.0")));
        }
        s
    }
}

/// A membership and its version (the zxid of the reconfig that made it;
/// 0 for the one the config files gave).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Members {
    pub servers: BTreeMap<u64, ServerSpec>,
    pub version: u64,
}

impl Members {
    /// Reads `/zookeeper/config`'s text (or a dynamic config file's:
    /// `server.N=` lines, an optional `version=` line).
    pub fn parse(text: &str) -> Result<Members, String> {
        let mut m = Members::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("'{line}': expected key=value"))?;
            let k = k.trim();
            if k == "version" {
                m.version = u64::from_str_radix(v.trim(), 16)
                    .map_err(|_| format!("'{line}': the version is not hexadecimal"))?;
            } else if let Some(id) = k.strip_prefix("server.") {
                let id: u64 = id
                    .parse()
                    .map_err(|_| format!("'{k}': expected server.<number>"))?;
                m.servers
                    .insert(id, ServerSpec::parse(v).map_err(|e| format!("{k}: {e}"))?);
            } else {
                return Err(format!("'{k}' is not a membership key"));
            }
        }
        Ok(m)
    }

    /// The `server.N=` lines, in id order, without the version line.
    pub fn render_servers(&self) -> String {
        let lines: Vec<String> = self
            .servers
            .iter()
            .map(|(id, s)| format!("server.{id}={}", s.render()))
            .collect();
        lines.join("\n")
    }

    /// `/zookeeper/config`'s text: the server lines, then `version=<hex>`
    /// with no trailing newline, as ZooKeeper's `QuorumMaj.toString`.
    pub fn render(&self) -> String {
        let mut s = self.render_servers();
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(&format!("version={:x}", self.version));
        s
    }

    pub fn voters(&self) -> Vec<u64> {
        self.ids(false)
    }

    pub fn learners(&self) -> Vec<u64> {
        self.ids(true)
    }

    fn ids(&self, observers: bool) -> Vec<u64> {
        self.servers
            .iter()
            .filter(|(_, s)| s.observer == observers)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The membership a reconfig asks for, as ZooKeeper's
    /// PrepRequestProcessor computes it: `new_members` (servers separated
    /// by commas or newlines) replaces the lot; otherwise `leaving` ids
    /// (comma-separated) go and `joining` servers (`server.N=spec;client`,
    /// comma-separated, each with all three ports) come or replace the
    /// line of their id. Err is ZooKeeper's BadArguments message.
    pub fn changed(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
    ) -> Result<BTreeMap<u64, ServerSpec>, String> {
        if let Some(all) = new_members {
            let mut next = BTreeMap::new();
            for item in all.split([',', '\n']).map(str::trim) {
                if item.is_empty() {
                    continue;
                }
                let (id, spec) = joiner(item, false)?;
                next.insert(id, spec);
            }
            return Ok(next);
        }
        let mut next = self.servers.clone();
        for id in leaving.into_iter().flat_map(|l| l.split(',')) {
            let id = id.trim();
            if id.is_empty() {
                continue;
            }
            let id: u64 = id
                .parse()
                .map_err(|_| format!("For input string: \"{id}\""))?;
            next.remove(&id);
        }
        for item in joining.into_iter().flat_map(|j| j.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (id, spec) = joiner(item, true)?;
            for (other, o) in &next {
                if *other != id && clash(&spec, o) {
                    return Err("Reconfiguration failed".into());
                }
            }
            next.insert(id, spec);
        }
        Ok(next)
    }
}

/// `server.N=spec`; `need_client`: the client port must be there
/// (ZooKeeper: "each server should have 3 ports specified").
fn joiner(item: &str, need_client: bool) -> Result<(u64, ServerSpec), String> {
    let (k, v) = item
        .split_once('=')
        .filter(|(_, v)| !v.contains('='))
        .ok_or("Wrong format of server string")?;
    let id: u64 = k
        .trim()
        .rsplit('.')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("For input string: \"{}\"", k.trim()))?;
    let spec = ServerSpec::parse(v)?;
    if need_client && spec.client.is_none() {
        return Err(
            "Wrong format of server string - each server should have 3 ports specified".into(),
        );
    }
    Ok((id, spec))
}

/// Two members listening on one quorum or election address.
fn clash(a: &ServerSpec, b: &ServerSpec) -> bool {
    a.host == b.host
        && [a.quorum_port, a.election_port]
            .iter()
            .any(|p| *p == b.quorum_port || *p == b.election_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Members {
        Members::parse(
            "server.1=localhost:2888:3888:participant\nserver.2=localhost:2889:3889\nserver.3=localhost:2890:3890;127.0.0.1:2183",
        )
        .unwrap()
    }

    #[test]
    fn renders_as_zookeeper() {
        assert_eq!(
            three().render(),
            "server.1=localhost:2888:3888:participant\nserver.2=localhost:2889:3889:participant\nserver.3=localhost:2890:3890:participant;127.0.0.1:2183\nversion=0"
        );
        let mut m = three();
        m.version = 0x100000002;
        assert!(m.render().ends_with("\nversion=100000002"));
        assert_eq!(Members::parse(&m.render()).unwrap(), m);
    }

    #[test]
    fn incremental_changes() {
        let m = three();
        let next = m
            .changed(
                Some("server.100=0.0.0.0:1234:2345:observer;3456"),
                None,
                None,
            )
            .unwrap();
        assert_eq!(
            next[&100].render(),
            "0.0.0.0:1234:2345:observer;0.0.0.0:3456"
        );
        assert_eq!(next.len(), 4);
        let next = m.changed(None, Some("2, 3"), None).unwrap();
        assert_eq!(next.keys().copied().collect::<Vec<_>>(), vec![1]);
        // A joiner replaces the line of its id.
        let next = m
            .changed(Some("server.2=otherhost:1:2;3"), None, None)
            .unwrap();
        assert_eq!(next[&2].host, "otherhost");
    }

    #[test]
    fn bad_arguments() {
        let m = three();
        for j in [
            "some thing",
            "server.4=localhost:1:2",
            "server.x=localhost:1:2;3",
            "server.4=localhost:1;3",
            "server.4=localhost:2888:9;3",
        ] {
            assert!(m.changed(Some(j), None, None).is_err(), "{j}");
        }
        assert!(m.changed(None, Some("two"), None).is_err());
        assert!(m.changed(None, None, Some("server.1=h:1")).is_err());
    }

    #[test]
    fn new_members_replace_the_lot() {
        let m = three();
        let next = m
            .changed(
                None,
                None,
                Some(
                    "server.1=localhost:2888:3888;2181,server.4=localhost:2891:3891:observer;2184",
                ),
            )
            .unwrap();
        assert_eq!(next.keys().copied().collect::<Vec<_>>(), vec![1, 4]);
        assert!(next[&4].observer);
    }
}
