//! Who this server is: standalone, or which member of which ensemble
//! (its id from `<dataDir>/myid`, as ZooKeeper) with its own and its
//! peers' quorum and election addresses.

use std::net::SocketAddr;

use crate::config::Config;
use crate::error::ServerError;
use crate::peer;

/// Who this server is in its ensemble.
pub(crate) struct Membership {
    pub my_id: u64,
    pub voters: Vec<u64>,
    /// Observers (`:observer` lines): they replicate and serve, never vote.
    pub learners: Vec<u64>,
    /// Our quorum/election addresses and the peers'; none when standalone.
    pub transport: Option<Transport>,
}

pub(crate) struct Transport {
    pub quorum: SocketAddr,
    pub election: SocketAddr,
    /// Our own addresses as our server line gives them (told to a server
    /// that asks who we are: `peer_joiner`).
    pub me: peer::PeerAddr,
    pub peers: Vec<peer::PeerAddr>,
}

pub(crate) fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs
        .first()
        .copied()
        .ok_or_else(|| format!("{host} has no address"))
}

impl Membership {
    /// Standalone with no `server.N` line, or one with `standaloneEnabled`
    /// (`Config::distributed`); otherwise an ensemble member whose id is
    /// in `<dataDir>/myid`, as ZooKeeper.
    pub(crate) fn of(cfg: &Config) -> Result<Membership, ServerError> {
        if !cfg.distributed() {
            return Ok(Membership {
                my_id: 1,
                voters: vec![1],
                learners: vec![],
                transport: None,
            });
        }
        let file = cfg.path.display().to_string();
        let myid_path = cfg.data_dir.join("myid");
        let myid_err = |msg: String| ServerError::Myid {
            path: myid_path.display().to_string(),
            msg,
        };
        let text = std::fs::read_to_string(&myid_path).map_err(|e| {
            myid_err(format!(
                "cannot read it ({e}); an ensemble member needs its id there, one of {:?} from the server.N lines of {file}",
                cfg.servers.keys().collect::<Vec<_>>()
            ))
        })?;
        let my_id: u64 = text
            .trim()
            .parse()
            .map_err(|_| myid_err(format!("'{}' is not a server id", text.trim())))?;
        let Some(me) = cfg.servers.get(&my_id) else {
            return Err(myid_err(format!(
                "id {my_id} has no server.{my_id} line in {file}"
            )));
        };
        let bad = |msg: String| ServerError::Address {
            file: file.clone(),
            id: my_id,
            msg,
        };
        let quorum = resolve(&me.host, me.quorum_port).map_err(bad)?;
        let election = resolve(&me.host, me.election_port).map_err(bad)?;
        let peers = cfg
            .servers
            .iter()
            .filter(|(id, _)| **id != my_id)
            .map(|(id, s)| peer::PeerAddr {
                id: *id,
                quorum: format!("{}:{}", s.host, s.quorum_port),
                election: format!("{}:{}", s.host, s.election_port),
            })
            .collect();
        Ok(Membership {
            my_id,
            voters: cfg
                .servers
                .iter()
                .filter(|(_, s)| !s.observer)
                .map(|(id, _)| *id)
                .collect(),
            learners: cfg
                .servers
                .iter()
                .filter(|(_, s)| s.observer)
                .map(|(id, _)| *id)
                .collect(),
            transport: Some(Transport {
                quorum,
                election,
                me: peer::PeerAddr {
                    id: my_id,
                    quorum: format!("{}:{}", me.host, me.quorum_port),
                    election: format!("{}:{}", me.host, me.election_port),
                },
                peers,
            }),
        })
    }
}
