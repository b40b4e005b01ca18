//! A linearizability checker for the writes clients saw (Wing & Gong's
//! search with Lowe's memoisation, as in Porcupine and Knossos), over a
//! model of znodes: each key is absent or holds (version, value).
//!
//! ZooKeeper promises linearizable writes, not reads (a replica answers
//! reads from its own state), so histories here hold creates, setData and
//! deletes, unconditional and version-conditioned. Keys are independent
//! objects: a history is linearizable when each key's is (P-compositional),
//! so each key is searched on its own.
//!
//! An operation whose answer never came (the connection or the server
//! died) has an unknown outcome: it may have taken effect at any time
//! after its call, or never; it returns at "infinity" and matches any
//! outcome.

use std::collections::{BTreeMap, HashSet};

/// A write on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create {
        value: u8,
    },
    /// `expect` -1: any version.
    Set {
        value: u8,
        expect: i32,
    },
    Delete {
        expect: i32,
    },
    /// A multi of check(version `expect`) then setData: all or nothing.
    CheckSet {
        value: u8,
        expect: i32,
    },
}

/// What the client was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success: the node's version after a create or set (a delete's is 0).
    Ok {
        version: i32,
    },
    NodeExists,
    NoNode,
    BadVersion,
    /// No answer: may have happened (with any result) or not.
    Unknown,
}

/// One operation: called at `call`, answered at `ret` (`i64::MAX` when the
/// outcome is unknown), both in the same clock.
#[derive(Clone, Debug)]
pub struct Event {
    pub key: String,
    pub call: i64,
    pub ret: i64,
    pub op: Op,
    pub out: Outcome,
}

/// A key's state: absent, or its version. (Values are in the history for
/// the reader of a failure; with no reads in it, no outcome depends on them.)
type State = Option<i32>;

/// Applies `op` to `s`: the new state and what a client would be told.
fn step(s: State, op: Op) -> (State, Outcome) {
    match (op, s) {
        (Op::Create { .. }, None) => (Some(0), Outcome::Ok { version: 0 }),
        (Op::Create { .. }, Some(_)) => (s, Outcome::NodeExists),
        (Op::Set { .. } | Op::Delete { .. } | Op::CheckSet { .. }, None) => (s, Outcome::NoNode),
        (Op::CheckSet { expect, .. }, Some(v)) if expect != v => (s, Outcome::BadVersion),
        (Op::CheckSet { .. }, Some(v)) => (Some(v + 1), Outcome::Ok { version: v + 1 }),
        (Op::Set { expect, .. } | Op::Delete { expect }, Some(v))
            if expect != -1 && expect != v =>
        {
            (s, Outcome::BadVersion)
        }
        (Op::Set { .. }, Some(v)) => (Some(v + 1), Outcome::Ok { version: v + 1 }),
        (Op::Delete { .. }, Some(_)) => (None, Outcome::Ok { version: 0 }),
    }
}

/// Whether `op` may be linearized on `s` given what the client saw.
fn admits(s: State, op: Op, seen: Outcome) -> Option<State> {
    let (next, out) = step(s, op);
    (seen == Outcome::Unknown || seen == out).then_some(next)
}

/// Checks every key's history; Err names the first key with none.
pub fn check(events: &[Event]) -> Result<(), String> {
    let mut by_key: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in events {
        by_key.entry(&e.key).or_default().push(e);
    }
    for (key, evs) in by_key {
        if !check_key(&evs) {
            let mut evs = evs;
            evs.sort_by_key(|e| (e.call, e.ret));
            let lines: Vec<String> = evs
                .iter()
                .map(|e| {
                    let ret = if e.ret == i64::MAX {
                        "never".to_string()
                    } else {
                        e.ret.to_string()
                    };
                    format!("  [{}, {ret}] {:?} -> {:?}", e.call, e.op, e.out)
                })
                .collect();
            return Err(format!(
                "no linearization of the writes to {key}:\n{}",
                lines.join("\n")
            ));
        }
    }
    Ok(())
}

/// One key, starting absent: Wing & Gong's depth-first search over the
/// call/return list, backtracking at a return whose call is not yet
/// linearized, skipping (linearized set, state) pairs seen before.
fn check_key(evs: &[&Event]) -> bool {
    let n = evs.len();
    // Entries: (time, is_return, op index); calls sort before returns at
    // the same instant (treated as concurrent: the weaker claim).
    let mut entries: Vec<(i64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, e) in evs.iter().enumerate() {
        entries.push((e.call, false, i));
        entries.push((e.ret, true, i));
    }
    entries.sort();
    // A doubly linked list over entries, with a head sentinel at 0.
    let len = entries.len() + 1;
    let mut next: Vec<usize> = (1..=len).collect();
    let mut prev: Vec<usize> = (0..len).map(|i| i.wrapping_sub(1)).collect();
    next[len - 1] = usize::MAX;
    let at = |k: usize| entries[k - 1];
    let mut ret_of = vec![0usize; n];
    for k in 1..len {
        let (_, is_ret, i) = at(k);
        if is_ret {
            ret_of[i] = k;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, k: usize| {
        let (p, q) = (prev[k], next[k]);
        next[p] = q;
        if q != usize::MAX {
            prev[q] = p;
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, k: usize| {
        let (p, q) = (prev[k], next[k]);
        next[p] = k;
        if q != usize::MAX {
            prev[q] = k;
        }
    };

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut k = next[0];
    while next[0] != usize::MAX {
        if k == usize::MAX {
            // Only reachable when every remaining entry was tried: back up.
            let Some((c, s)) = stack.pop() else {
                return false;
            };
            let i = at(c).2;
            linearized[i / 64] &= !(1 << (i % 64));
            state = s;
            relink(&mut next, &mut prev, ret_of[i]);
            relink(&mut next, &mut prev, c);
            k = next[c];
            continue;
        }
        let (_, is_ret, i) = at(k);
        if !is_ret {
            if let Some(s2) = admits(state, evs[i].op, evs[i].out) {
                let mut lin = linearized.clone();
                lin[i / 64] |= 1 << (i % 64);
                if seen.insert((lin.clone(), s2)) {
                    stack.push((k, state));
                    state = s2;
                    linearized = lin;
                    unlink(&mut next, &mut prev, k);
                    unlink(&mut next, &mut prev, ret_of[i]);
                    k = next[0];
                    continue;
                }
            }
            k = next[k];
        } else {
            // A return whose operation is not linearized yet: every
            // ordering tried so far fails; undo the last choice.
            let Some((c, s)) = stack.pop() else {
                return false;
            };
            let j = at(c).2;
            linearized[j / 64] &= !(1 << (j % 64));
            state = s;
            relink(&mut next, &mut prev, ret_of[j]);
            relink(&mut next, &mut prev, c);
            k = next[c];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(call: i64, ret: i64, op: Op, out: Outcome) -> Event {
        Event {
            key: "/k".into(),
            call,
            ret,
            op,
            out,
        }
    }
    const UNKNOWN: i64 = i64::MAX;

    #[test]
    fn sequential_histories() {
        let ok = |v| Outcome::Ok { version: v };
        // A multi check+set succeeds only on the version it names.
        let m = vec![
            ev(0, 1, Op::Create { value: 1 }, ok(0)),
            ev(
                2,
                3,
                Op::CheckSet {
                    value: 2,
                    expect: 0,
                },
                ok(1),
            ),
            ev(
                4,
                5,
                Op::CheckSet {
                    value: 3,
                    expect: 0,
                },
                Outcome::BadVersion,
            ),
        ];
        assert!(check(&m).is_ok());
        let mut bad = m.clone();
        bad[2].out = ok(2);
        assert!(check(&bad).is_err());
        let h = vec![
            ev(0, 1, Op::Create { value: 1 }, ok(0)),
            ev(
                2,
                3,
                Op::Set {
                    value: 2,
                    expect: 0,
                },
                ok(1),
            ),
            ev(
                4,
                5,
                Op::Set {
                    value: 3,
                    expect: 0,
                },
                Outcome::BadVersion,
            ),
            ev(
                6,
                7,
                Op::Set {
                    value: 3,
                    expect: -1,
                },
                ok(2),
            ),
            ev(8, 9, Op::Delete { expect: 2 }, ok(0)),
            ev(10, 11, Op::Delete { expect: -1 }, Outcome::NoNode),
        ];
        assert!(check(&h).is_ok());
        // The same with one answer changed is impossible.
        let mut bad = h.clone();
        bad[2].out = ok(1);
        assert!(check(&bad).is_err());
        let mut bad = h.clone();
        bad[5].out = ok(0);
        assert!(check(&bad).is_err());
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let ok = |v| Outcome::Ok { version: v };
        // Two overlapping sets: versions 1 and 2 in either order.
        let h = vec![
            ev(0, 1, Op::Create { value: 0 }, ok(0)),
            ev(
                2,
                10,
                Op::Set {
                    value: 1,
                    expect: -1,
                },
                ok(2),
            ),
            ev(
                3,
                5,
                Op::Set {
                    value: 2,
                    expect: -1,
                },
                ok(1),
            ),
        ];
        assert!(check(&h).is_ok());
        // Not overlapping: the first to finish must get the lower version.
        let h = vec![
            ev(0, 1, Op::Create { value: 0 }, ok(0)),
            ev(
                2,
                4,
                Op::Set {
                    value: 1,
                    expect: -1,
                },
                ok(2),
            ),
            ev(
                5,
                6,
                Op::Set {
                    value: 2,
                    expect: -1,
                },
                ok(1),
            ),
        ];
        assert!(check(&h).is_err());
        // Two creates that both succeed, overlapping: impossible.
        let h = vec![
            ev(0, 5, Op::Create { value: 0 }, ok(0)),
            ev(1, 6, Op::Create { value: 1 }, ok(0)),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn unknown_outcomes_may_or_may_not_have_happened() {
        let ok = |v| Outcome::Ok { version: v };
        // A lost set that must have happened (a later set saw version 2).
        let h = vec![
            ev(0, 1, Op::Create { value: 0 }, ok(0)),
            ev(
                2,
                UNKNOWN,
                Op::Set {
                    value: 1,
                    expect: -1,
                },
                Outcome::Unknown,
            ),
            ev(
                5,
                6,
                Op::Set {
                    value: 2,
                    expect: -1,
                },
                ok(2),
            ),
        ];
        assert!(check(&h).is_ok());
        // One that must not have (a later conditional set on version 0 won).
        let h = vec![
            ev(0, 1, Op::Create { value: 0 }, ok(0)),
            ev(
                2,
                UNKNOWN,
                Op::Set {
                    value: 1,
                    expect: -1,
                },
                Outcome::Unknown,
            ),
            ev(
                5,
                6,
                Op::Set {
                    value: 2,
                    expect: 0,
                },
                ok(1),
            ),
        ];
        assert!(check(&h).is_ok());
        // But a lost write cannot take effect before it was sent.
        let h = vec![
            ev(0, 1, Op::Create { value: 0 }, ok(0)),
            ev(
                2,
                3,
                Op::Set {
                    value: 2,
                    expect: -1,
                },
                ok(2),
            ),
            ev(
                4,
                UNKNOWN,
                Op::Set {
                    value: 1,
                    expect: -1,
                },
                Outcome::Unknown,
            ),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn keys_are_checked_apart() {
        let ok = |v| Outcome::Ok { version: v };
        let mut h = vec![
            ev(0, 1, Op::Create { value: 0 }, ok(0)),
            ev(0, 1, Op::Create { value: 0 }, ok(0)),
        ];
        h[1].key = "/other".into();
        assert!(check(&h).is_ok());
        h[1].key = "/k".into();
        let err = check(&h).unwrap_err();
        assert!(err.contains("/k"), "{err}");
    }

    #[test]
    fn a_long_concurrent_history_is_checked_quickly() {
        // 200 writers each doing one unconditional set, all overlapping,
        // versions given out in some order: memoisation keeps this small.
        let ok = |v| Outcome::Ok { version: v };
        let mut h = vec![ev(0, 1, Op::Create { value: 0 }, ok(0))];
        for i in 0..200 {
            h.push(ev(
                2 + i,
                1000 + i,
                Op::Set {
                    value: (i % 7) as u8,
                    expect: -1,
                },
                ok((200 - i) as i32),
            ));
        }
        assert!(check(&h).is_ok());
    }
}
