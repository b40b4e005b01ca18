//! A node's record and its packed body: one allocation of exactly its
//! size holding the name, the Stat as varints and the data, behind a thin
//! pointer. Every `unsafe` of the tree is in this file, each with its
//! `// SAFETY:` reason; the body property tests run under Miri.

use super::*;

/// The Stat fields a node keeps: ZooKeeper's own `StatPersisted`, whose
/// `cversion` counts the creates under the node (sequential suffixes come
/// from it); data length and child count are derived when read.
pub(crate) use proto::StatPersisted as PStat;

/// What the tree asks of its persisted Stat beyond the record itself.
pub(crate) trait PStatExt {
    /// The persisted fields of a `Stat` given in that form.
    fn from_stat(s: &Stat) -> PStat;
    /// The Stat as a client sees it.
    fn client_stat(self, data_length: usize, num_children: usize) -> Stat;
}

impl PStatExt for PStat {
    fn from_stat(s: &Stat) -> PStat {
        PStat::of(s)
    }

    /// The Stat as a client sees it (ZooKeeper's `DataNode.copyStat`):
    /// cversion counts changes, i.e. every create and every delete, which
    /// is `2 * creates - children still present`; containers and TTL nodes
    /// show no ephemeral owner.
    fn client_stat(self, data_length: usize, num_children: usize) -> Stat {
        let num_children = num_children as i32;
        Stat {
            data_length: data_length as i32,
            num_children,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(num_children),
            ephemeral_owner: match owner_kind(self.ephemeral_owner) {
                OwnerKind::Ephemeral(s) => s,
                _ => 0,
            },
            ..self.to_stat()
        }
    }
}

/// A node as stored in the arena: its parent, its interned ACL list, and
/// one allocation of exactly its size holding the rest — name, Stat and
/// data — so no allocator size class rounds a node up much and no header
/// comes with it (memory per znode is one of the race's measures).
///
/// The body: a varint `name length << 1 | data is null`, the name, the
/// Stat as varints (zxids and times after the first as differences from
/// czxid and ctime, which keeps a typical Stat near 16 bytes instead of
/// 60), a varint data length, the data. Its length is not stored: it
/// follows from those varints, so the slot holds a thin pointer.
#[derive(Debug, Clone)]
pub(crate) struct NodeRec {
    pub(crate) parent: u32,
    pub(crate) acl: AclId,
    pub(crate) body: Body,
}

/// A body's bytes behind a thin pointer (8 bytes in a slot where
/// `Box<[u8]>` takes 16). Only `make_body` makes one, from a well-formed
/// body; changes in place keep its length (`set_stat`).
pub(crate) struct Body(std::ptr::NonNull<u8>);

// SAFETY: a Body owns its allocation as a Box<[u8]> would; it has no
// interior mutability.
unsafe impl Send for Body {}
unsafe impl Sync for Body {}

/// The length of a well-formed body starting at `p`, read from its own
/// varints.
///
/// SAFETY: `p` must point at a body made by `make_body` (possibly changed
/// in place by `set_stat`): every byte read here is then inside it.
unsafe fn body_len(p: *const u8) -> usize {
    let mut at = 0usize;
    // SAFETY (each call): inside the body by the caller's contract.
    let name = (unsafe { read_varint(p, &mut at) } >> 1) as usize;
    at += name;
    for _ in 0..9 {
        unsafe { read_varint(p, &mut at) };
    }
    let data = unsafe { read_varint(p, &mut at) } as usize;
    at + data
}

/// The varint at `p + *at`, moving `*at` past it.
///
/// SAFETY: a whole varint must start at `p + *at` inside one allocation.
unsafe fn read_varint(p: *const u8, at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        // SAFETY: the varint's bytes are inside, by the caller's contract.
        let b = unsafe { *p.add(*at) };
        *at += 1;
        if shift < 64 {
            v |= ((b & 0x7f) as u64) << shift;
        }
        shift += 7;
        if b < 0x80 {
            return v;
        }
    }
}

impl Body {
    /// A body of these parts, concatenated; they must form a well-formed
    /// body (checked in debug builds).
    pub(crate) fn from_parts(parts: [&[u8]; 4]) -> Body {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let layout = std::alloc::Layout::array::<u8>(len.max(1)).expect("a body fits memory");
        // SAFETY: the layout has a nonzero size.
        let p = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = std::ptr::NonNull::new(p) else {
            std::alloc::handle_alloc_error(layout);
        };
        let mut at = 0;
        for part in parts {
            // SAFETY: the parts add up to `len`, the allocation's size, and
            // do not overlap a fresh allocation.
            unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), p.add(at), part.len()) };
            at += part.len();
        }
        let body = Body(ptr);
        // SAFETY: all `len` bytes were written just above.
        debug_assert_eq!(unsafe { body_len(p) }, len, "a well-formed body");
        body
    }
}

impl Body {
    /// The name's bytes, read without walking the rest of the body: child
    /// lookups and listings read only names (walking the whole body for
    /// its length cost getChildren of 1,000 children a third of its speed).
    pub(crate) fn name_bytes(&self) -> &[u8] {
        let p = self.0.as_ptr();
        let mut at = 0;
        // SAFETY: a well-formed body starts with a whole varint, the name's
        // length, followed by that many bytes of name.
        unsafe {
            let n = (read_varint(p, &mut at) >> 1) as usize;
            std::slice::from_raw_parts(p.add(at), n)
        }
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: a Body is well-formed, and owns its bytes.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr(), body_len(self.0.as_ptr())) }
    }
}

impl std::ops::DerefMut for Body {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr(), body_len(self.0.as_ptr())) }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        let len = self.len();
        let layout = std::alloc::Layout::array::<u8>(len.max(1)).expect("allocated with it");
        // SAFETY: allocated in `from_parts` with this layout (the length
        // never changes).
        unsafe { std::alloc::dealloc(self.0.as_ptr(), layout) };
    }
}

impl Clone for Body {
    fn clone(&self) -> Body {
        Body::from_parts([self, &[], &[], &[]])
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A body's varints before they are copied into it: on the stack.
pub(crate) struct Head {
    pub(crate) buf: [u8; 110],
    pub(crate) len: usize,
}

impl Head {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

pub(crate) fn put_varint(w: &mut Head, mut v: u64) {
    while v >= 0x80 {
        w.buf[w.len] = v as u8 | 0x80;
        w.len += 1;
        v >>= 7;
    }
    w.buf[w.len] = v as u8;
    w.len += 1;
}

/// The varint at `*at`, moving past it. Bodies are only made by
/// `make_body`, so a truncated one cannot occur; it would read as 0.
pub(crate) fn get_varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&byte) = b.get(*at) {
        *at += 1;
        if shift < 64 {
            v |= ((byte & 0x7f) as u64) << shift;
        }
        shift += 7;
        if byte < 0x80 {
            break;
        }
    }
    v
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

pub(crate) fn put_stat(w: &mut Head, s: &PStat) {
    // czxid and ctime are never negative in practice: plain varints
    // (zigzag would cost ctime a seventh byte).
    put_varint(w, s.czxid as u64);
    put_varint(w, zigzag(s.mzxid.wrapping_sub(s.czxid)));
    put_varint(w, zigzag(s.pzxid.wrapping_sub(s.czxid)));
    put_varint(w, s.ctime as u64);
    put_varint(w, zigzag(s.mtime.wrapping_sub(s.ctime)));
    put_varint(w, s.ephemeral_owner as u64);
    put_varint(w, zigzag(s.version as i64));
    put_varint(w, zigzag(s.cversion as i64));
    put_varint(w, zigzag(s.aversion as i64));
}

pub(crate) fn get_stat(b: &[u8], at: &mut usize) -> PStat {
    let mut next = || get_varint(b, at);
    let czxid = next() as i64;
    let mzxid = czxid.wrapping_add(unzigzag(next()));
    let pzxid = czxid.wrapping_add(unzigzag(next()));
    let ctime = next() as i64;
    let mtime = ctime.wrapping_add(unzigzag(next()));
    let ephemeral_owner = next() as i64;
    let version = unzigzag(next()) as i32;
    let cversion = unzigzag(next()) as i32;
    let aversion = unzigzag(next()) as i32;
    PStat {
        czxid,
        mzxid,
        pzxid,
        ctime,
        mtime,
        ephemeral_owner,
        version,
        cversion,
        aversion,
    }
}

pub(crate) fn make_body(name: &str, stat: &PStat, data: Option<&[u8]>) -> Body {
    let d = data.unwrap_or(&[]);
    // The varints on the stack, then one allocation of the exact length.
    // At most 11 varints of at most 10 bytes.
    let mut head = Head {
        buf: [0; 110],
        len: 0,
    };
    put_varint(
        &mut head,
        ((name.len() as u64) << 1) | data.is_none() as u64,
    );
    let name_at = head.len;
    put_stat(&mut head, stat);
    put_varint(&mut head, d.len() as u64);
    let head = head.bytes();
    Body::from_parts([&head[..name_at], name.as_bytes(), &head[name_at..], d])
}

impl NodeRec {
    pub(crate) fn new(
        name: &str,
        data: Option<&[u8]>,
        acl: AclId,
        stat: PStat,
        parent: u32,
    ) -> NodeRec {
        NodeRec {
            parent,
            acl,
            body: make_body(name, &stat, data),
        }
    }

    /// (name length, data is null, where the name starts).
    pub(crate) fn head(&self) -> (usize, bool, usize) {
        let mut at = 0;
        let w = get_varint(&self.body, &mut at);
        ((w >> 1) as usize, w & 1 == 1, at)
    }

    pub(crate) fn name(&self) -> &str {
        // Bodies are made from &str names only.
        std::str::from_utf8(self.body.name_bytes()).unwrap_or("")
    }

    /// The Stat, where it ends, where the data starts, and whether the data is null.
    pub(crate) fn stat_at(&self) -> (PStat, usize, usize, bool) {
        let (n, null, at) = self.head();
        let mut at = at + n;
        let stat = get_stat(&self.body, &mut at);
        let stat_end = at;
        get_varint(&self.body, &mut at);
        (stat, stat_end, at, null)
    }

    pub(crate) fn stat(&self) -> PStat {
        self.stat_at().0
    }

    pub(crate) fn data(&self) -> Option<&[u8]> {
        let (_, _, at, null) = self.stat_at();
        (!null).then(|| self.body.get(at..).unwrap_or(&[]))
    }

    /// The Stat and the data, decoded once.
    pub(crate) fn stat_and_data(&self) -> (PStat, Option<&[u8]>) {
        let (stat, _, at, null) = self.stat_at();
        (stat, (!null).then(|| self.body.get(at..).unwrap_or(&[])))
    }

    pub(crate) fn data_len(&self) -> usize {
        self.data().map_or(0, <[u8]>::len)
    }

    /// A new Stat: written over the old one when its varints take the same
    /// room (a parent's pzxid and cversion on each create mostly do), else
    /// into a new body.
    pub(crate) fn set_stat(&mut self, stat: PStat) {
        let (n, _, at) = self.head();
        let (_, stat_end, _, _) = self.stat_at();
        let mut head = Head {
            buf: [0; 110],
            len: 0,
        };
        put_stat(&mut head, &stat);
        if head.len == stat_end - (at + n) {
            self.body[at + n..stat_end].copy_from_slice(head.bytes());
        } else {
            self.body = make_body(self.name(), &stat, self.data());
        }
    }

    /// New data and Stat written over the old ones when the body keeps its
    /// length (a setData of a value of the same size, the common case):
    /// no allocation, no free, no fresh cache line. False when it would not
    /// fit exactly; then nothing changed.
    pub(crate) fn set_data_in_place(&mut self, stat: &PStat, data: Option<&[u8]>) -> bool {
        let d = data.unwrap_or(&[]);
        let mut head = Head {
            buf: [0; 110],
            len: 0,
        };
        let name_len = self.body.name_bytes().len();
        put_varint(&mut head, ((name_len as u64) << 1) | data.is_none() as u64);
        let name_at = head.len;
        put_stat(&mut head, stat);
        put_varint(&mut head, d.len() as u64);
        let head = head.bytes();
        let body: &mut [u8] = &mut self.body;
        if head.len() + name_len + d.len() != body.len() {
            return false;
        }
        // Same total length: the name's varint has its old length too (it
        // differs at most in the null bit), so the name stays where it is.
        body[..name_at].copy_from_slice(&head[..name_at]);
        let rest = &mut body[name_at + name_len..];
        let (stat_part, data_part) = rest.split_at_mut(head.len() - name_at);
        stat_part.copy_from_slice(&head[name_at..]);
        data_part.copy_from_slice(d);
        true
    }

    /// New data and Stat; returns the body before (for the undo log).
    pub(crate) fn set_data(&mut self, stat: PStat, data: Option<&[u8]>) -> Body {
        let body = make_body(self.name(), &stat, data);
        std::mem::replace(&mut self.body, body)
    }
}
