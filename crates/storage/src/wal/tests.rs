//! The WAL against its own format rules: round trips, overwrites,
//! rotation, torn tails, corruption, missing segments.

use super::*;
use proptest::prelude::*;

fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    let mut e = Entry::default();
    e.index = index;
    e.term = term;
    e.data = data.to_vec().into();
    e
}

fn hs(term: u64, commit: u64) -> HardState {
    let mut h = HardState::default();
    h.term = term;
    h.commit = commit;
    h
}

fn small() -> WalOptions {
    WalOptions {
        prealloc_bytes: 4096,
        force_sync: true,
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(DIR_NAME))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn indexes(r: &Recovered) -> Vec<u64> {
    r.entries.iter().map(|e| e.index).collect()
}

#[test]
fn round_trip_with_hard_and_conf_state() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, r) = Wal::open(d.path(), WalOptions::default()).unwrap();
    assert!(r.entries.is_empty());
    let mut cs = ConfState::default();
    cs.voters = vec![1, 2, 3];
    w.append(
        &[entry(1, 1, b"a"), entry(2, 1, b"")],
        Some(&hs(1, 2)),
        Some(&cs),
    )
    .unwrap();
    w.append(&[entry(3, 2, b"c")], Some(&hs(2, 3)), None)
        .unwrap();
    drop(w);
    let (_, r) = Wal::open(d.path(), WalOptions::default()).unwrap();
    assert_eq!(indexes(&r), vec![1, 2, 3]);
    assert_eq!(r.entries[2].data.as_ref() as &[u8], b"c");
    assert_eq!((r.hard_state.term, r.hard_state.commit), (2, 3));
    assert_eq!(r.conf_state.unwrap().voters, vec![1, 2, 3]);
    assert!(r.torn_tail.is_none());
}

#[test]
fn lower_index_replaces_the_rest() {
    // Raft paper §5.3: a follower's conflicting entries are replaced.
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), small()).unwrap();
    w.append(
        &[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")],
        None,
        None,
    )
    .unwrap();
    w.append(&[entry(2, 2, b"B")], None, None).unwrap();
    drop(w);
    let (_, r) = Wal::open(d.path(), small()).unwrap();
    assert_eq!(indexes(&r), vec![1, 2]);
    assert_eq!(r.entries[1].term, 2);
}

#[test]
fn rotates_segments_and_reads_them_all() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), small()).unwrap();
    for i in 1..=200u64 {
        w.append(&[entry(i, 1, &[7u8; 100])], Some(&hs(1, i)), None)
            .unwrap();
    }
    drop(w);
    assert!(segments(d.path()).len() > 5);
    let (mut w, r) = Wal::open(d.path(), small()).unwrap();
    assert_eq!(indexes(&r), (1..=200).collect::<Vec<_>>());
    w.append(&[entry(201, 1, b"x")], None, None).unwrap();
    drop(w);
    let (_, r) = Wal::open(d.path(), small()).unwrap();
    assert_eq!(r.entries.len(), 201);
}

#[test]
fn missing_segment_is_fatal() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), small()).unwrap();
    for i in 1..=200u64 {
        w.append(&[entry(i, 1, &[7u8; 100])], None, None).unwrap();
    }
    drop(w);
    let segs = segments(d.path());
    std::fs::remove_file(&segs[2]).unwrap();
    let err = Wal::open(d.path(), small()).err().expect("must refuse");
    assert!(err.to_string().contains("a segment is missing"), "{err}");
}

#[test]
fn flipped_byte_in_the_middle_is_fatal() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), WalOptions::default()).unwrap();
    for i in 1..=20u64 {
        w.append(&[entry(i, 1, b"payload")], None, None).unwrap();
    }
    drop(w);
    let seg = &segments(d.path())[0];
    let f = OpenOptions::new().read(true).write(true).open(seg).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, HEADER_BYTES + 5 * 48 + 20).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], HEADER_BYTES + 5 * 48 + 20)
        .unwrap();
    let err = Wal::open(d.path(), WalOptions::default())
        .err()
        .expect("must refuse");
    assert!(matches!(err, WalError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("yet a valid record follows"),
        "{err}"
    );
    // Read beside a writer, the newest segment ends at the first bad record.
    assert!(read_only(d.path()).is_err());
    let live = read_live(d.path()).unwrap();
    assert_eq!(live.entries.len(), 5);
}

#[test]
fn segment_cut_to_any_length_never_panics() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), small()).unwrap();
    for i in 1..=5u64 {
        w.append(&[entry(i, 1, b"abc")], None, None).unwrap();
    }
    drop(w);
    let seg = segments(d.path())[0].clone();
    let full = std::fs::read(&seg).unwrap();
    let end = full.len() - full.iter().rev().take_while(|b| **b == 0).count();
    for cut in (HEADER_BYTES as usize..end + 9).rev() {
        std::fs::write(&seg, &full[..cut]).unwrap();
        match Wal::open(d.path(), small()) {
            Ok((_, r)) => assert!(r.entries.len() <= 5),
            Err(e) => assert!(matches!(e, WalError::Corrupt { .. }), "{e}"),
        }
        std::fs::write(&seg, &full).unwrap();
    }
}

#[test]
fn segment_created_without_a_durable_header_is_dropped() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), small()).unwrap();
    w.append(&[entry(1, 1, b"a")], None, None).unwrap();
    drop(w);
    let zeros = d.path().join(DIR_NAME).join(segment_name(2));
    std::fs::write(&zeros, vec![0u8; 8192]).unwrap();
    let (mut w, r) = Wal::open(d.path(), small()).unwrap();
    assert_eq!(indexes(&r), vec![1]);
    w.append(&[entry(2, 1, b"b")], None, None).unwrap();
    drop(w);
    assert_eq!(
        indexes(&Wal::open(d.path(), small()).unwrap().1),
        vec![1, 2]
    );
}

/// Byte offsets where each batch ends, to know what a cut must keep.
fn mib() -> WalOptions {
    WalOptions {
        prealloc_bytes: 1 << 20,
        force_sync: true,
    }
}

fn write_batches(dir: &Path, batches: &[Vec<u8>]) -> Vec<(u64, u64)> {
    let (mut w, _) = Wal::open(dir, mib()).unwrap();
    let mut ends = Vec::new();
    let mut index = 1;
    for b in batches {
        let es: Vec<Entry> = b
            .iter()
            .map(|n| {
                let e = entry(index, 1, &vec![*n; *n as usize]);
                index += 1;
                e
            })
            .collect();
        w.append(&es, Some(&hs(1, index - 1)), None).unwrap();
        ends.push((w.offset, index - 1));
    }
    ends
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A crash mid-write leaves a prefix of the last write: recovery keeps
    /// every batch that was complete and drops the torn one, reporting it.
    #[test]
    fn torn_tail_keeps_every_complete_batch(
        batches in proptest::collection::vec(proptest::collection::vec(1u8..60, 1..5), 1..12),
        cut_frac in 0.0f64..1.0,
    ) {
        let d = tempfile::tempdir().unwrap();
        let ends = write_batches(d.path(), &batches);
        let (prev_end, _) = if ends.len() > 1 { ends[ends.len() - 2] } else { (HEADER_BYTES, 0) };
        let last_end = ends.last().unwrap().0;
        let cut = prev_end + ((last_end - prev_end) as f64 * cut_frac) as u64;
        let seg = &segments(d.path())[0];
        // Zero everything from the cut on, as a crash before those bytes were written.
        let f = OpenOptions::new().write(true).open(seg).unwrap();
        f.write_all_at(&vec![0u8; (last_end - cut) as usize], cut).unwrap();
        let (mut w, r) = Wal::open(d.path(), mib()).unwrap();
        let kept_batches = if cut == last_end { ends.len() } else { ends.len() - 1 };
        let want_last = if kept_batches == 0 { 0 } else { ends[kept_batches - 1].1 };
        // Whole records of the torn batch may survive: never more than was written.
        let got_last = r.entries.last().map_or(0, |e| e.index);
        prop_assert!(got_last >= want_last && got_last <= ends.last().unwrap().1);
        prop_assert_eq!(indexes(&r), (1..=got_last).collect::<Vec<_>>());
        // The log stays appendable, and what follows is read back.
        w.append(&[entry(got_last + 1, 2, b"after")], None, None).unwrap();
        drop(w);
        let (_, r2) = Wal::open(d.path(), mib()).unwrap();
        prop_assert_eq!(r2.entries.last().unwrap().index, got_last + 1);
        prop_assert!(r2.torn_tail.is_none());
    }

    /// Garbage instead of zeros at the tail (a torn sector) is also a torn tail.
    #[test]
    fn garbled_last_record_is_a_torn_tail(
        batches in proptest::collection::vec(proptest::collection::vec(1u8..60, 1..4), 2..8),
        at_frac in 0.0f64..1.0,
        garbage in any::<u8>(),
    ) {
        let d = tempfile::tempdir().unwrap();
        let ends = write_batches(d.path(), &batches);
        let (prev_end, prev_last) = ends[ends.len() - 2];
        let last_end = ends.last().unwrap().0;
        let at = prev_end + ((last_end - prev_end - 1) as f64 * at_frac) as u64;
        let seg = &segments(d.path())[0];
        let f = OpenOptions::new().read(true).write(true).open(seg).unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        let g = if garbage == b[0] { !garbage } else { garbage };
        f.write_all_at(&[g], at).unwrap();
        match Wal::open(d.path(), mib()) {
            Ok((_, r)) => {
                let got_last = r.entries.last().map_or(0, |e| e.index);
                prop_assert!(got_last >= prev_last);
                prop_assert!(r.torn_tail.is_some() || got_last == ends.last().unwrap().1);
            }
            // A garbled byte inside one record of a multi-record batch, with
            // later records of that batch intact, looks like corruption: refused.
            Err(e) => {
                let corrupt = matches!(e, WalError::Corrupt { .. });
                prop_assert!(corrupt, "unexpected error {}", e);
            }
        }
    }
}

#[test]
fn restart_record_voids_the_entries_before_it() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), small()).unwrap();
    for i in 1..=10 {
        w.append(&[entry(i, 1, b"old")], Some(&hs(1, i)), None)
            .unwrap();
    }
    // A snapshot up to 500 installed from the leader, then the log goes on.
    w.stage_restart(500, 3);
    w.stage_entries(&[entry(501, 3, b"new"), entry(502, 3, b"new")]);
    w.stage_hard_state(&hs(3, 502));
    w.commit().unwrap();
    drop(w);
    let (mut w, r) = Wal::open(d.path(), small()).unwrap();
    assert_eq!(r.restart, Some((500, 3)));
    assert_eq!(indexes(&r), vec![501, 502]);
    assert_eq!(r.hard_state.commit, 502);
    // Appends continue after it, across new segments.
    for i in 503..=600 {
        w.append(&[entry(i, 3, &[1u8; 64])], None, None).unwrap();
    }
    drop(w);
    let (_, r) = Wal::open(d.path(), small()).unwrap();
    assert_eq!(indexes(&r), (501..=600).collect::<Vec<_>>());
}

#[test]
fn restart_below_the_current_segment_keeps_segment_names_increasing() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), small()).unwrap();
    // Fill segments so the current one is named well above 40.
    for i in 1..=200 {
        w.append(&[entry(i, 1, &[2u8; 64])], None, None).unwrap();
    }
    let before = segments(d.path()).len();
    assert!(before > 2);
    // A restart at 40 (this replica's entries after 40 conflicted) then
    // enough entries to open new segments: their names must not collide
    // with or sort before the existing ones.
    w.stage_restart(40, 5);
    w.commit().unwrap();
    for i in 41..=300 {
        w.append(&[entry(i, 5, &[3u8; 64])], None, None).unwrap();
    }
    drop(w);
    let (_, r) = Wal::open(d.path(), small()).unwrap();
    assert_eq!(indexes(&r), (41..=300).collect::<Vec<_>>());
    assert!(r.entries.iter().all(|e| e.term == 5));
}

#[test]
fn open_from_skips_entries_below_and_keeps_everything_else() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), small()).unwrap();
    let mut cs = ConfState::default();
    cs.voters = vec![1, 2, 3];
    for i in 1..=100u64 {
        let h = (i == 60).then(|| hs(3, 60));
        let c = (i == 10).then_some(&cs);
        w.append(&[entry(i, 1 + i / 50, &[7u8; 100])], h.as_ref(), c)
            .unwrap();
    }
    drop(w);
    assert!(segments(d.path()).len() > 2, "spans segments");
    let (_, all) = Wal::open(d.path(), small()).unwrap();
    let (_, r) = Wal::open_from(d.path(), small(), 50).unwrap();
    assert_eq!(indexes(&r), (50..=100).collect::<Vec<_>>());
    assert_eq!(r.entries[..], all.entries[49..]);
    assert_eq!(r.last_skipped, Some(49));
    assert_eq!((r.hard_state.term, r.hard_state.commit), (3, 60));
    assert_eq!(r.conf_state.unwrap().voters, vec![1, 2, 3]);
    // Everything below: nothing kept, and the log still goes on at 101.
    let (mut w, r) = Wal::open_from(d.path(), small(), 1000).unwrap();
    assert!(r.entries.is_empty());
    w.append(&[entry(101, 3, b"next")], None, None).unwrap();
    drop(w);
    let (_, r) = Wal::open(d.path(), small()).unwrap();
    assert_eq!(indexes(&r), (1..=101).collect::<Vec<_>>());
}

#[test]
fn open_from_still_finds_a_missing_segment() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), small()).unwrap();
    for i in 1..=100u64 {
        w.append(&[entry(i, 1, &[7u8; 100])], None, None).unwrap();
    }
    drop(w);
    let segs = segments(d.path());
    assert!(segs.len() > 3);
    std::fs::remove_file(&segs[1]).unwrap();
    assert!(Wal::open_from(d.path(), small(), 90).is_err());
}

#[test]
fn an_unsynced_hard_state_reads_back_and_segments_still_rotate() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, _) = Wal::open(d.path(), small()).unwrap();
    for i in 1..=40u64 {
        w.append(&[entry(i, 1, &[7u8; 200])], Some(&hs(1, i - 1)), None)
            .unwrap();
        // The commit the entry made, written without an fsync.
        w.stage_hard_state(&hs(1, i));
        w.commit_with(false).unwrap();
    }
    assert!(segments(d.path()).len() > 1, "small segments rotate");
    drop(w);
    let (_, r) = Wal::open(d.path(), small()).unwrap();
    assert_eq!(indexes(&r), (1..=40).collect::<Vec<_>>());
    assert_eq!((r.hard_state.term, r.hard_state.commit), (1, 40));
}
