//! Ensembles in the seeded simulation. Each test names the rule it pins;
//! a failure prints the seed (`SIM_SEED` reruns one).

use crate::sim::Sim;

fn seeds() -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => (1..=20).collect(),
    }
}

/// Runs until exactly one leader exists (bounded), returning it.
fn settle(sim: &mut Sim) -> u64 {
    for _ in 0..200 {
        sim.run(100);
        let l = sim.leaders();
        if l.len() == 1 {
            return l[0];
        }
    }
    panic!(
        "no single leader after 20 s of simulated time: {:?}\n{:#?}",
        sim.leaders(),
        sim.describe_replicas()
    );
}

/// Every acknowledged create is on every live replica.
fn assert_acked_everywhere(sim: &Sim, seed: u64) {
    for id in sim.live() {
        for p in sim.acked.keys() {
            assert!(
                sim.has_node(id, p),
                "seed {seed}: acknowledged {p} missing on {id}"
            );
        }
    }
}

/// Every live replica applied the same entries into the same tree.
fn converge(sim: &mut Sim, seed: u64) {
    for _ in 0..300 {
        sim.run(100);
        let s = sim.states();
        let first = s.values().next().copied();
        if s.values().all(|v| Some(*v) == first) {
            return;
        }
    }
    panic!(
        "seed {seed}: replicas did not converge: {:?}\n{:#?}",
        sim.states(),
        sim.describe_replicas()
    );
}

#[test]
fn writes_through_any_replica_are_replicated_everywhere() {
    // DESIGN.md: any server accepts clients; writes go through the leader.
    for seed in seeds() {
        let mut sim = Sim::new(seed, 3);
        settle(&mut sim);
        let clients: Vec<usize> = (1..=3).map(|n| sim.add_client(n)).collect();
        // A replica that has not heard from the leader yet refuses clients:
        // reconnect, as a client does, a bounded number of times.
        for _ in 0..50 {
            sim.run(100);
            for (k, c) in clients.iter().enumerate() {
                if !sim.client_connected(*c) {
                    sim.move_client(*c, k as u64 + 1);
                }
            }
        }
        sim.run(200);
        for (k, c) in clients.iter().enumerate() {
            assert!(
                sim.client_connected(*c),
                "seed {seed}: client {k} connected"
            );
            for i in 0..10 {
                sim.create(*c, &format!("/c{k}-{i}"));
            }
        }
        converge(&mut sim, seed);
        assert_eq!(sim.acked.len(), 30, "seed {seed}: every write acknowledged");
        assert_acked_everywhere(&sim, seed);
    }
}

#[test]
fn leader_crash_loses_no_acknowledged_write() {
    // Raft §5.4 (leader completeness): what was acknowledged survives failover.
    for seed in seeds() {
        let mut sim = Sim::new(seed, 3);
        sim.drop_rate = 0.02;
        let leader = settle(&mut sim);
        let clients: Vec<usize> = (1..=3).map(|n| sim.add_client(n)).collect();
        let mut n = 0;
        for round in 0..60 {
            for c in &clients {
                if sim.client_connected(*c) {
                    sim.create(*c, &format!("/w{n}"));
                    n += 1;
                } else if sim.rng.gen_bool(0.3) {
                    let live = sim.live();
                    let to = live[sim.rng.gen_range(0..live.len())];
                    sim.move_client(*c, to);
                }
            }
            sim.run(50);
            if round == 20 {
                sim.crash(leader);
            }
            if round == 45 {
                sim.start(leader);
            }
        }
        sim.drop_rate = 0.0;
        converge(&mut sim, seed);
        assert!(
            sim.acked.len() > 20,
            "seed {seed}: the load ran ({} acked)",
            sim.acked.len()
        );
        eprintln!(
            "seed {seed}: {} acknowledged writes across a leader crash, now at zxid {:?}",
            sim.acked.len(),
            sim.states().values().next()
        );
        assert_acked_everywhere(&sim, seed);
    }
}

#[test]
fn a_minority_acknowledges_nothing_and_converges_after_healing() {
    // Raft §5.2/§6: a partitioned minority cannot commit; check-quorum makes
    // a cut-off leader step down; afterwards it catches up.
    for seed in seeds() {
        let mut sim = Sim::new(seed, 5);
        let leader = settle(&mut sim);
        let clients: Vec<usize> = (1..=5).map(|n| sim.add_client(n)).collect();
        sim.run(300);
        // The old leader and one follower on the small side.
        let other = if leader == 1 { 2 } else { 1 };
        sim.partition(&[leader, other]);
        let mut n = 0;
        for _ in 0..80 {
            for c in &clients {
                if !sim.create(*c, &format!("/p{n}")) && sim.rng.gen_bool(0.2) {
                    let live = sim.live();
                    let to = live[sim.rng.gen_range(0..live.len())];
                    sim.move_client(*c, to);
                }
                n += 1;
            }
            sim.run(100);
        }
        assert!(
            sim.acked_by_minority.is_empty(),
            "seed {seed}: minority acknowledged {:?}",
            sim.acked_by_minority
        );
        assert!(
            !sim.acked.is_empty(),
            "seed {seed}: the majority side kept working"
        );
        eprintln!(
            "seed {seed}: majority acknowledged {} writes during the partition",
            sim.acked.len()
        );
        sim.heal();
        converge(&mut sim, seed);
        assert_acked_everywhere(&sim, seed);
    }
}

use rand::Rng;

#[test]
fn a_replica_behind_the_compacted_log_catches_up_by_snapshot() {
    // Raft §7: a follower that needs entries the leader compacted gets the
    // leader's snapshot, installs it, and continues from the log after it.
    // Also a crash right after installing, and a leader crash meanwhile.
    for seed in seeds() {
        let mut sim = Sim::with_snap_count(seed, 3, 40);
        sim.drop_rate = 0.01;
        let leader = settle(&mut sim);
        let lagging = if leader == 3 { 2 } else { 3 };
        let client = sim.add_client(leader);
        sim.run(300);
        sim.crash(lagging);
        let mut n = 0;
        for round in 0..120 {
            if sim.client_connected(client) {
                for _ in 0..3 {
                    sim.create(client, &format!("/s{n}"));
                    n += 1;
                }
            } else {
                let live = sim.live();
                let to = live[sim.rng.gen_range(0..live.len())];
                sim.move_client(client, to);
            }
            sim.run(50);
            if round == 80 {
                sim.start(lagging);
            }
            if round == 100 && sim.rng.gen_bool(0.5) {
                // Crash the lagging replica again, maybe mid-transfer.
                sim.crash(lagging);
                sim.start(lagging);
            }
        }
        sim.drop_rate = 0.0;
        converge(&mut sim, seed);
        assert!(
            sim.acked.len() > 150,
            "seed {seed}: the load ran ({} acked)",
            sim.acked.len()
        );
        assert!(
            sim.snapshots_installed > 0,
            "seed {seed}: the lagging replica needed a snapshot"
        );
        assert_acked_everywhere(&sim, seed);
        eprintln!(
            "seed {seed}: {} acknowledged, {} snapshots installed",
            sim.acked.len(),
            sim.snapshots_installed
        );
        // And after restarting everyone from disk, still the same.
        for id in sim.live() {
            sim.crash(id);
        }
        for id in 1..=3 {
            sim.start(id);
        }
        settle(&mut sim);
        converge(&mut sim, seed);
        assert_acked_everywhere(&sim, seed);
    }
}

/// Seeds for the checked-history runs: `SIM_SEED` replays one,
/// `SIM_SEEDS=N` runs 1..=N (the soak), else 1..=300.
fn history_seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("SIM_SEED") {
        return vec![s.parse().expect("SIM_SEED is a number")];
    }
    match std::env::var("SIM_SEEDS") {
        Ok(s) => (1..=s.parse().expect("SIM_SEEDS is a number")).collect(),
        // Beyond the first 300: seeds that caught a follower acknowledging
        // entries before its fsync of them completed (not one of the first
        // 300 did) — replicas diverged (774 at 3 voters, 874 at 5) and a
        // write was lost (1563, 3 voters and an observer).
        Err(_) => (1..=300).chain([774, 874, 1563]).collect(),
    }
}

/// Fault rates of a checked-history run (per message, or per 20 ms step
/// for pauses and one-way cuts; crashes, restarts, partitions and heals
/// are fixed).
#[derive(Clone, Copy)]
struct Faults {
    duplicate: f64,
    reorder: f64,
    max_fsync_ms: i64,
    pause: f64,
    one_way_cut: f64,
    /// Per write batch.
    fsync_fail: f64,
    /// Each replica's clock rate is drawn from 1 ± this.
    clock_drift: f64,
    /// Leadership transfers (per 20 ms step), asked of a random replica.
    transfer: f64,
    /// Membership changes (per 20 ms step), asked by the super user: a
    /// member removed, a removed one added back (voter or observer), a
    /// member's role switched.
    reconfig: f64,
    /// Clients also use recursive watches, getEphemerals,
    /// getAllChildrenNumber, containers, TTL nodes and digest ACLs (off
    /// for the regression seeds, whose histories predate them).
    more_ops: bool,
}

const FAULTS: Faults = Faults {
    duplicate: 0.01,
    reorder: 0.02,
    max_fsync_ms: 15,
    pause: 0.005,
    one_way_cut: 0.01,
    fsync_fail: 0.0005,
    clock_drift: 0.02,
    transfer: 0.01,
    reconfig: 0.01,
    more_ops: true,
};

/// Random writes on three keys from clients on every replica, while
/// replicas crash and restart, links drop messages and partitions come
/// and go; then everything heals. The writes the clients saw must be
/// linearizable, and every replica must end with the same tree.
fn run_checked_history(
    seed: u64,
    voters: u64,
    f: Faults,
) -> (
    Vec<crate::lincheck::Event>,
    std::collections::BTreeMap<&'static str, u64>,
) {
    run_checked_history_with_observers(seed, voters, 0, f)
}

/// The same, with `observers` observers beside the voters; clients use
/// them too.
fn run_checked_history_with_observers(
    seed: u64,
    voters: u64,
    observers: u64,
    f: Faults,
) -> (
    Vec<crate::lincheck::Event>,
    std::collections::BTreeMap<&'static str, u64>,
) {
    use crate::lincheck::{check, Op};
    use rand::Rng;
    const KEYS: [&str; 3] = ["/k0", "/k1", "/k2"];
    let mut sim = Sim::with_observers(seed, voters, observers, 40);
    sim.drop_rate = 0.02;
    sim.duplicate_rate = f.duplicate;
    sim.reorder_rate = f.reorder;
    sim.max_fsync_ms = f.max_fsync_ms;
    // Every replica, observers included, is subject to the faults.
    let n = voters + observers;
    if f.clock_drift > 0.0 {
        for id in 1..=n {
            let rate = 1.0 + sim.rng.gen_range(-f.clock_drift..=f.clock_drift);
            sim.clock_rate.insert(id, rate);
        }
    }
    let (pause_p, oneway_p) = (f.pause, f.one_way_cut);
    settle(&mut sim);
    // Failed fsyncs from here on, where the loop restarts the replicas
    // they stop (two of three stopped before the first leader left none:
    // seed 722).
    sim.fsync_fail_rate = f.fsync_fail;
    let clients: Vec<usize> = (0..2 * n).map(|i| sim.add_client(1 + i % n)).collect();
    if f.reconfig > 0.0 {
        // A third of the clients ask for read-only: a replica without a
        // quorum serves them (every replica has readonlymode.enabled), and
        // must answer none of their writes OK.
        for &c in clients.iter().filter(|c| **c % 3 == 2) {
            sim.wants_read_only(c);
        }
    }
    // The super user's session, for membership changes only.
    let admin = if f.reconfig > 0.0 {
        Some(sim.add_client(1))
    } else {
        None
    };
    let mut down: Vec<u64> = Vec::new();
    for _ in 0..300 {
        sim.run(20);
        // A replica stopped by a failed fsync is restarted like a crashed one.
        down.append(&mut sim.fsync_failed);
        // Faults: at most a minority down at once, so the ensemble can
        // always make progress once healed.
        let r: f64 = sim.rng.gen();
        if r < 0.02 && (down.len() as u64 + 1) * 2 < voters {
            let live = sim.live();
            let victim = live[sim.rng.gen_range(0..live.len())];
            sim.crash(victim);
            down.push(victim);
        } else if r < 0.04 && !down.is_empty() {
            let id = down.remove(0);
            sim.start(id);
        } else if r < 0.05 {
            // Any split: a random nonempty proper subset on one side.
            let side: Vec<u64> = loop {
                let side: Vec<u64> = (1..=n).filter(|_| sim.rng.gen_bool(0.5)).collect();
                if !side.is_empty() && side.len() < n as usize {
                    break side;
                }
            };
            sim.partition(&side);
        } else if r < 0.05 + oneway_p {
            // One direction of one link.
            let a = sim.rng.gen_range(1..=n);
            let b = 1 + (a + sim.rng.gen_range(0..n - 1)) % n;
            sim.cut_one_way(a, b);
        } else if r < 0.06 + pause_p {
            // A pause longer or shorter than an election timeout.
            let id = sim.rng.gen_range(1..=n);
            let ms = sim.rng.gen_range(100..3000);
            sim.pause(id, ms);
        } else if r < 0.085 {
            sim.heal();
        } else if r < 0.085 + f.transfer {
            // A leadership transfer, asked of any replica, to any voter
            // or (of the leader) to the one it picks.
            let live = sim.live();
            let id = live[sim.rng.gen_range(0..live.len())];
            let to = sim.rng.gen_bool(0.5).then(|| sim.rng.gen_range(1..=voters));
            sim.transfer_leadership(id, to);
        } else if let (Some(a), true) = (admin, r < 0.085 + f.transfer + f.reconfig) {
            change_membership(&mut sim, a, n);
        }
        for &c in &clients {
            let live = sim.live();
            if live.is_empty() {
                // Failed fsyncs stopped the replicas a crash had left.
                break;
            }
            // A client leaves a dead replica, one it could not connect to,
            // and now and then one that stopped answering (its writes stay
            // unknown).
            if !live.contains(&sim.client_node(c))
                || (!sim.client_connected(c) && sim.rng.gen_bool(0.2))
                || (sim.client_pending(c) >= 2 && sim.rng.gen_bool(0.05))
            {
                let to = live[sim.rng.gen_range(0..live.len())];
                sim.move_client(c, to);
                continue;
            }
            if sim.client_pending(c) >= 2 || !sim.rng.gen_bool(0.5) {
                continue;
            }
            let key = KEYS[sim.rng.gen_range(0..KEYS.len())];
            if sim.rng.gen_bool(0.3) {
                let kinds = if f.more_ops { 17 } else { 12 };
                match sim.rng.gen_range(0..kinds) {
                    0 => sim.sync(c),
                    1 => sim.exists_watch(c, key),
                    2 => sim.children_watch(c, "/"),
                    3 => {
                        let expect = if sim.rng.gen_bool(0.5) {
                            -1
                        } else {
                            sim.rng.gen_range(0..3)
                        };
                        sim.set_acl(c, key, expect)
                    }
                    4 => sim.persistent_watch(c, key),
                    12 => sim.recursive_watch(c),
                    13 => sim.get_ephemerals(c),
                    14 => sim.get_all_children_number(c),
                    15 if !sim.client_authed(c) && sim.rng.gen_bool(0.5) => {
                        sim.add_auth(c);
                        true
                    }
                    15 | 16 if !sim.protected.is_empty() => {
                        let p = sim.protected[sim.rng.gen_range(0..sim.protected.len())].clone();
                        let write = sim.rng.gen_bool(0.3);
                        sim.guarded(c, &p, write)
                    }
                    15 | 16 => sim.create_protected(c, &format!("/p-{c}-{}", sim.now_ms)),
                    n => sim.read(c, key, n % 2 == 0),
                };
                continue;
            }
            if sim.rng.gen_bool(0.1) {
                // Ephemeral and sequential nodes beside the checked keys;
                // containers with an ephemeral child, TTL nodes.
                let flags = sim.rng.gen_range(1..=if f.more_ops { 5 } else { 3 });
                if flags == 4 {
                    sim.create_container(c, &format!("/ct-{c}-{}", sim.now_ms));
                    continue;
                } else if flags == 5 {
                    let ttl = sim.rng.gen_range(100..2000);
                    sim.create_ttl(c, &format!("/t-{c}-{}", sim.now_ms), ttl);
                    continue;
                }
                let path = if flags & 2 != 0 {
                    "/s-".to_string()
                } else {
                    format!("/e-{c}-{}", sim.now_ms)
                };
                sim.create_flags(c, &path, flags);
                continue;
            }
            let value = sim.rng.gen();
            let expect = if sim.rng.gen_bool(0.5) {
                -1
            } else {
                sim.rng.gen_range(0..4)
            };
            let op = match sim.rng.gen_range(0..12) {
                0..=2 => Op::Create { value },
                3..=7 => Op::Set { value, expect },
                8..=9 => Op::CheckSet {
                    value,
                    expect: expect.max(0),
                },
                _ => Op::Delete { expect },
            };
            sim.write(c, key, op);
        }
    }
    sim.heal();
    sim.fsync_fail_rate = 0.0;
    down.append(&mut sim.fsync_failed);
    for id in down {
        sim.start(id);
    }
    // Connected clients keep their sessions alive with pings until the
    // leader and the set of connected sessions have held for longer than a
    // session timeout (a new leader restarts every session's timer; a
    // client cut off now leaves its session to time out): every abandoned
    // session has expired by then.
    let mut leaders = (sim.leaders(), sim.live_sessions());
    let mut since = sim.now_ms;
    for step in 0..900 {
        sim.run(100);
        if step % 10 == 0 {
            for &c in &clients {
                sim.ping(c);
            }
        }
        let now = (sim.leaders(), sim.live_sessions());
        if now != leaders {
            leaders = now;
            since = sim.now_ms;
        }
        if leaders.0.len() == 1 && sim.now_ms - since > 12_000 {
            break;
        }
    }
    let replay = format!(
        "seed {seed} ({voters} voters; replay: SIM_SEED={seed} cargo test -p node checked_history)"
    );
    if let Some(a) = admin {
        // Every server removed on the way comes back, so all converge.
        readd_everyone(&mut sim, a, voters, n, &replay);
    }
    converge(&mut sim, seed);
    let mismatches = sim.membership_mismatches();
    assert!(mismatches.is_empty(), "{replay}: {mismatches:#?}");
    assert!(sim.violations.is_empty(), "{replay}: {:#?}", sim.violations);
    // Ephemerals: exactly those of the sessions still alive, on every
    // replica; an acknowledged one of a live session is there.
    let live = sim.live_sessions();
    for id in sim.live() {
        let nodes = sim.ephemeral_nodes(id);
        for (path, owner) in &nodes {
            assert!(
                live.contains(owner),
                "{replay}: replica {id} keeps {path} of ended session {owner:#x}: {}",
                sim.describe_session(*owner)
            );
        }
        for (path, owner) in &sim.ephemerals {
            if live.contains(owner) {
                assert!(
                    nodes.iter().any(|(p, o)| p == path && o == owner),
                    "{replay}: replica {id} lost {path} of live session {owner:#x}"
                );
            }
        }
    }
    // The leader reaps used, empty containers and expired TTL nodes: the
    // final phase outlasted every TTL and check interval.
    for id in sim.live() {
        let left = sim.reapable_left(id);
        assert!(left.is_empty(), "{replay}: replica {id} still has {left:?}");
    }
    assert!(
        sim.session_violations.is_empty(),
        "{replay}: {:#?}",
        sim.session_violations
    );
    let history: Vec<_> = std::mem::take(&mut sim.history)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !sim.refused_writes.contains(i))
        .map(|(_, e)| e)
        .collect();
    if let Err(e) = check(&history) {
        panic!("{replay}: {e}");
    }
    let mut stats = std::mem::take(&mut sim.stats);
    stats.insert("campaign deferred", sim.campaigns_deferred());
    stats.insert("writes sent again (live replicas)", sim.writes_resent());
    stats.insert("simulated ms", sim.now_ms as u64);
    (history, stats)
}

/// The admin client asks for one membership change, if it is connected
/// to a live replica and has no reconfig in flight (else it moves).
fn change_membership(sim: &mut Sim, admin: usize, n: u64) {
    use crate::sim::server_line;
    use rand::Rng;
    let live = sim.live();
    if live.is_empty() {
        return;
    }
    if !live.contains(&sim.client_node(admin)) || !sim.client_connected(admin) {
        let to = live[sim.rng.gen_range(0..live.len())];
        sim.move_client(admin, to);
        return;
    }
    if sim.client_pending(admin) > 0 {
        return;
    }
    let m = sim.members();
    let gone: Vec<u64> = (1..=n).filter(|i| !m.servers.contains_key(i)).collect();
    let members: Vec<u64> = m.servers.keys().copied().collect();
    if !gone.is_empty() && sim.rng.gen_bool(0.6) {
        let id = gone[sim.rng.gen_range(0..gone.len())];
        let observer = sim.rng.gen_bool(0.3);
        sim.reconfig(admin, Some(server_line(id, observer)), None);
    } else if members.is_empty() {
    } else if sim.rng.gen_bool(0.5) {
        let id = members[sim.rng.gen_range(0..members.len())];
        sim.reconfig(admin, None, Some(id.to_string()));
    } else {
        let id = members[sim.rng.gen_range(0..members.len())];
        let observer = !m.servers[&id].observer;
        sim.reconfig(admin, Some(server_line(id, observer)), None);
    }
}

/// After the faults: the admin adds back every server a reconfig
/// removed, in its first role, through the leader (bounded).
fn readd_everyone(sim: &mut Sim, admin: usize, voters: u64, n: u64, replay: &str) {
    use crate::sim::server_line;
    for _ in 0..200 {
        let m = sim.members();
        let gone: Vec<u64> = (1..=n).filter(|i| !m.servers.contains_key(i)).collect();
        let Some(&id) = gone.first() else {
            return;
        };
        let leaders = sim.leaders();
        if let [leader] = leaders[..] {
            if sim.client_node(admin) != leader || !sim.client_connected(admin) {
                sim.move_client(admin, leader);
            } else if sim.client_pending(admin) == 0 {
                sim.reconfig(admin, Some(server_line(id, id > voters)), None);
            }
        }
        sim.run(200);
    }
    panic!(
        "{replay}: servers still out of the ensemble: {:?}\n{:#?}",
        sim.members(),
        sim.describe_replicas()
    );
}

/// Runs the seeds and says what the histories held: a checker fed only
/// failures or only unknowns would prove little.
fn checked_histories(voters: u64) {
    checked_histories_with_observers(voters, 0)
}

fn checked_histories_with_observers(voters: u64, observers: u64) {
    use crate::lincheck::Outcome;
    let mut counts = std::collections::BTreeMap::new();
    let mut faults = std::collections::BTreeMap::new();
    let seeds = history_seeds();
    for &seed in &seeds {
        // Any panic inside (the replica core's or Raft's own) names its seed.
        let (history, stats) = std::panic::catch_unwind(|| {
            run_checked_history_with_observers(seed, voters, observers, FAULTS)
        })
            .unwrap_or_else(|_| {
                panic!("seed {seed} ({voters} voters) panicked; replay: SIM_SEED={seed} cargo test -p node checked_history")
            });
        for (k, v) in stats {
            *faults.entry(k).or_insert(0u64) += v;
        }
        for e in history {
            let kind = match e.out {
                Outcome::Ok { .. } => "ok",
                Outcome::NodeExists => "NodeExists",
                Outcome::NoNode => "NoNode",
                Outcome::BadVersion => "BadVersion",
                Outcome::Unknown => "unknown",
            };
            *counts.entry(kind).or_insert(0u64) += 1;
        }
    }
    eprintln!(
        "{voters} voters, {observers} observers, {} seeds: checked writes {counts:?}; faults and events {faults:?}",
        seeds.len()
    );
    if seeds.len() > 1 {
        for kind in ["ok", "NodeExists", "NoNode", "BadVersion", "unknown"] {
            assert!(
                counts.get(kind).copied().unwrap_or(0) > 0,
                "no {kind} outcome"
            );
        }
    }
}

#[test]
fn checked_history_3_voters_writes_are_linearizable() {
    checked_histories(3);
}

#[test]
fn checked_history_5_voters_writes_are_linearizable() {
    checked_histories(5);
}

#[test]
fn checked_history_3_voters_and_an_observer_writes_are_linearizable() {
    checked_histories_with_observers(3, 1);
}

fn slow_fsync_faults(max_fsync_ms: i64) -> Faults {
    Faults {
        duplicate: 0.0,
        reorder: 0.0,
        pause: 0.0,
        one_way_cut: 0.0,
        fsync_fail: 0.0,
        clock_drift: 0.0,
        transfer: 0.0,
        reconfig: 0.0,
        more_ops: false,
        max_fsync_ms,
    }
}

/// Seeds for `regression_campaign_while_a_snapshot_install_is_not_durable`
/// when a change stops the current ones from reaching the scenario:
/// `SIM_SEEDS=3000 cargo test --release -p node find_campaign_seeds -- --ignored --nocapture`.
#[test]
#[ignore]
fn find_campaign_seeds() {
    let mut found = 0;
    for seed in history_seeds() {
        for (voters, fsync_ms) in [(3, 60), (5, 60), (5, 15), (3, 150), (5, 150)] {
            let (_, stats) = run_checked_history(seed, voters, slow_fsync_faults(fsync_ms));
            if let Some(n) = stats.get("campaign deferred").filter(|n| **n > 0) {
                println!("({seed}, {voters}, {fsync_ms}): {n} deferred");
                found += 1;
            }
        }
    }
    assert!(
        found > 0,
        "no seed reached the scenario; try more (SIM_SEEDS)"
    );
}

/// Found by this simulation: a follower that installed the leader's
/// snapshot and, before that install was durable, reached its election
/// timeout stopped with "unexpected error getting unapplied entries ...
/// Compacted" (Raft's applied index was still below the new log start).
/// The seeds reach that moment with the client mix of `more_ops: false`
/// (the seed found first, 301, stopped reaching it when clients gained
/// ops; 731 and 253 at 60 ms fsyncs stopped when a hard state that moves
/// only the commit index stopped waiting for an fsync — fewer fsyncs
/// queue before an install — and 545 and 338 at 150 ms stopped when a
/// follower's acknowledgements left from the log thread); six seeds now,
/// over three fsync times, so that one change is less likely to move them
/// all. The test asserts some still do, so a change that moves them
/// fails here instead of leaving a test that cannot fail. To find new
/// ones: `find_campaign_seeds` below, then check that they panic with
/// "Compacted" once the fix (`install_unpersisted`) is undone.
#[test]
fn regression_campaign_while_a_snapshot_install_is_not_durable() {
    let mut deferred = 0;
    for (seed, voters, fsync_ms) in [
        (174, 5, 15),
        (241, 3, 150),
        (361, 5, 150),
        (567, 3, 60),
        (625, 5, 150),
        (1474, 5, 150),
    ] {
        let (_, stats) = run_checked_history(seed, voters, slow_fsync_faults(fsync_ms));
        let n = stats.get("campaign deferred").copied().unwrap_or(0);
        eprintln!("seed {seed}: {n} election timeouts deferred");
        deferred += n;
    }
    assert!(
        deferred > 0,
        "no seed reached an election timeout during an unpersisted install any more"
    );
}

/// Found by the ephemeral check: sessions restored from disk had no timer,
/// so after a restart of the whole ensemble a dead client's session and
/// its ephemerals stayed forever. ZooKeeper restarts their timers.
#[test]
fn regression_sessions_restored_from_disk_expire() {
    for seed in seeds() {
        let mut sim = Sim::with_snap_count(seed, 3, 5);
        settle(&mut sim);
        let c = sim.add_client(1);
        sim.run(500);
        assert!(sim.client_connected(c), "seed {seed}");
        // Enough writes for a snapshot holding the session.
        for i in 0..10 {
            sim.create(c, &format!("/n{i}"));
            sim.run(100);
        }
        sim.create_flags(c, "/eph", 1);
        sim.run(500);
        assert_eq!(sim.ephemerals.len(), 1, "seed {seed}");
        for id in sim.live() {
            sim.crash(id);
        }
        for id in 1..=3 {
            sim.start(id);
        }
        settle(&mut sim);
        sim.run(15_000);
        converge(&mut sim, seed);
        for id in sim.live() {
            assert!(
                sim.ephemeral_nodes(id).is_empty(),
                "seed {seed}: replica {id} still has {:?}",
                sim.ephemeral_nodes(id)
            );
            assert!(sim.has_node(id, "/n9"), "seed {seed}");
        }
    }
}

#[test]
fn a_replica_whose_tree_diverged_stops_naming_the_index_and_the_others_go_on() {
    // Issue 16: replicas compare tree digests through the log (every 64
    // indexes in tests); one whose tree differs stops, the others serve.
    for seed in seeds() {
        let mut sim = Sim::new(seed, 3);
        let leader = settle(&mut sim);
        let c = sim.add_client(leader);
        sim.run(500);
        for i in 0..100 {
            sim.create(c, &format!("/a{i}"));
        }
        converge(&mut sim, seed);
        assert!(sim.diverged.is_empty(), "seed {seed}: {:?}", sim.diverged);
        let checked = sim.digest_checks(leader);
        assert!(
            checked > 0,
            "seed {seed}: the leader checked its own digests"
        );
        let bad = sim.live().into_iter().find(|&i| i != leader).unwrap();
        let good = sim
            .live()
            .into_iter()
            .find(|&i| i != leader && i != bad)
            .unwrap();
        let at = sim.states()[&bad].0 as u64;
        sim.plant_divergence(bad, "/a7");
        for i in 100..300 {
            sim.create(c, &format!("/a{i}"));
            sim.run(20);
        }
        sim.run(2_000);
        let due = (at / 64 + 1) * 64;
        assert_eq!(
            sim.diverged,
            vec![(bad, due)],
            "seed {seed}: planted after {at}"
        );
        assert!(!sim.live().contains(&bad), "seed {seed}");
        for i in 100..300 {
            assert!(
                sim.acked.contains_key(&format!("/a{i}")),
                "seed {seed}: /a{i}"
            );
        }
        converge(&mut sim, seed);
        assert!(sim.digest_checks(good) > 0 && sim.digest_checks(leader) > checked);
        assert_acked_everywhere(&sim, seed);
    }
}

#[test]
fn a_linearizable_replica_keeps_a_sessions_order_without_closing_it() {
    // `linearizable`: a write that arrives behind a read waiting for its
    // read index is held until that read is served; proposed at once, it
    // could apply first, and the connection would have to close.
    use crate::lincheck::Op;
    for seed in seeds() {
        let mut sim = Sim::new(seed, 3);
        settle(&mut sim);
        assert!(crate::sim::linearizable_replica(2));
        let c = sim.add_client(2);
        for _ in 0..50 {
            if sim.client_connected(c) {
                break;
            }
            sim.run(100);
            if !sim.client_connected(c) {
                sim.move_client(c, 2);
            }
        }
        assert!(sim.client_connected(c), "seed {seed}: connected");
        sim.write(c, "/k0", Op::Create { value: 0 });
        sim.run(500);
        for i in 0..50 {
            sim.read(c, "/k0", false);
            sim.write(
                c,
                "/k0",
                Op::Set {
                    value: i,
                    expect: -1,
                },
            );
        }
        for _ in 0..100 {
            if sim.client_pending(c) == 0 {
                break;
            }
            sim.run(100);
        }
        eprintln!("seed {seed}: answered at {} ms", sim.now_ms);
        assert!(
            sim.client_connected(c) && sim.client_pending(c) == 0,
            "seed {seed}: every request answered on the same connection ({} pending)",
            sim.client_pending(c)
        );
        assert!(
            sim.violations.is_empty(),
            "seed {seed}: {:#?}",
            sim.violations
        );
        assert!(
            sim.session_violations.is_empty(),
            "seed {seed}: {:#?}",
            sim.session_violations
        );
    }
}

#[test]
fn a_removed_server_follows_without_a_vote_and_comes_back_after_a_crash() {
    // ZooKeeper keeps a server a reconfig removed running as a non-voting
    // follower (`non_voting`): it applies every write and serves its
    // clients. A leader drops one it has not heard from for long; one
    // that calls in again after its restart is let back in.
    use crate::non_voting::GONE_TICKS;
    for seed in seeds() {
        let mut sim = Sim::new(seed, 3);
        let leader = settle(&mut sim);
        let gone = if leader == 3 { 2 } else { 3 };
        let admin = sim.add_client(leader);
        sim.run(500);
        assert!(sim.reconfig(admin, None, Some(gone.to_string())));
        sim.run(2_000);
        assert!(!sim.members().servers.contains_key(&gone), "seed {seed}");
        assert!(
            sim.replica(gone).is_non_voting(),
            "seed {seed}: {:#?}",
            sim.describe_replicas()
        );
        assert_eq!(sim.replica(leader).raft_members().0.len(), 2, "seed {seed}");
        let reader = sim.add_client(gone);
        sim.run(500);
        assert!(
            sim.client_connected(reader),
            "seed {seed}: a client of the removed server"
        );
        for i in 0..10 {
            sim.create(admin, &format!("/after-removal-{i}"));
        }
        sim.run(1_000);
        for i in 0..10 {
            sim.read(reader, &format!("/after-removal-{i}"), false);
        }
        converge(&mut sim, seed);
        assert_eq!(sim.acked.len(), 10, "seed {seed}");
        assert_acked_everywhere(&sim, seed);
        assert!(
            sim.violations.is_empty(),
            "seed {seed}: {:#?}",
            sim.violations
        );

        sim.crash(gone);
        sim.run((GONE_TICKS + 20) * super::sim::TICK_MS as i64);
        assert!(
            !sim.replica(leader).raft_members().1.contains(&gone),
            "seed {seed}: the leader still replicates to the crashed server: {:#?}",
            sim.describe_replicas()
        );
        sim.start(gone);
        sim.create(admin, "/after-restart");
        converge(&mut sim, seed);
        assert!(
            sim.replica(leader).raft_members().1.contains(&gone),
            "seed {seed}"
        );
        assert!(sim.replica(gone).is_non_voting(), "seed {seed}");
        assert_acked_everywhere(&sim, seed);
    }
}
