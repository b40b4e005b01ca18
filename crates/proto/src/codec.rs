//! The jute binary encoding (ZooKeeper's `BinaryInputArchive` /
//! `BinaryOutputArchive`): big-endian `int`/`long`, one-byte `boolean`,
//! `buffer` and `ustring` as an `int` length (-1 for null) then bytes,
//! `vector` as an `int` count (-1 for null) then elements.
//!
//! A null vector decodes as empty; a null ustring decodes as "". A null
//! buffer is kept as `None` because ZooKeeper distinguishes it (a znode
//! created with null data answers getData with a null buffer).

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record truncated: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("invalid length {0}")]
    BadLength(i32),
    #[error("string is not valid UTF-8")]
    BadUtf8,
    #[error("unknown op code {0}")]
    UnknownOpCode(i32),
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
}

/// A cursor over one frame's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Fails when bytes are left over: a request body must be exactly one record.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A length-prefixed byte run; `None` for length -1.
    pub fn bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError::BadLength(len));
        }
        Ok(Some(self.take(len as usize)?))
    }

    pub fn string(&mut self) -> Result<String, DecodeError> {
        match self.bytes()? {
            None => Ok(String::new()),
            Some(b) => std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| DecodeError::BadUtf8),
        }
    }

    pub fn vec<T: Jute>(&mut self) -> Result<Vec<T>, DecodeError> {
        let n = self.i32()?;
        if n == -1 {
            return Ok(Vec::new());
        }
        if n < 0 {
            return Err(DecodeError::BadLength(n));
        }
        // Every element takes at least one byte: bound the allocation by the input.
        let mut v = Vec::with_capacity((n as usize).min(self.remaining()));
        for _ in 0..n {
            v.push(T::read(self)?);
        }
        Ok(v)
    }
}

pub fn put_i32(w: &mut Vec<u8>, v: i32) {
    w.extend_from_slice(&v.to_be_bytes());
}
pub fn put_i64(w: &mut Vec<u8>, v: i64) {
    w.extend_from_slice(&v.to_be_bytes());
}
pub fn put_bool(w: &mut Vec<u8>, v: bool) {
    w.push(v as u8);
}
pub fn put_bytes(w: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => put_i32(w, -1),
        Some(b) => {
            put_i32(w, b.len() as i32);
            w.extend_from_slice(b);
        }
    }
}
pub fn put_str(w: &mut Vec<u8>, s: &str) {
    put_bytes(w, Some(s.as_bytes()));
}
pub fn put_vec<T: Jute>(w: &mut Vec<u8>, v: &[T]) {
    put_i32(w, v.len() as i32);
    for x in v {
        x.write(w);
    }
}

/// A value with a jute encoding.
pub trait Jute: Sized {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    fn write(&self, w: &mut Vec<u8>);

    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::new();
        self.write(&mut w);
        w
    }
    /// Decodes exactly one record from `b`, rejecting trailing bytes.
    fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b);
        let v = Self::read(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

impl Jute for i32 {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.i32()
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_i32(w, *self)
    }
}
impl Jute for i64 {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.i64()
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_i64(w, *self)
    }
}
impl Jute for bool {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.bool()
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_bool(w, *self)
    }
}
impl Jute for String {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.string()
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_str(w, self)
    }
}
/// A jute `buffer`: `None` is the null buffer.
impl Jute for Option<Vec<u8>> {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.bytes()?.map(<[u8]>::to_vec))
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_bytes(w, self.as_deref())
    }
}
impl<T: Jute> Jute for Vec<T> {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.vec()
    }
    fn write(&self, w: &mut Vec<u8>) {
        put_vec(w, self)
    }
}

/// Declares a jute record: a struct whose fields are encoded in order.
#[macro_export]
macro_rules! record {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl $crate::codec::Jute for $name {
            #[allow(unused_variables)]
            fn read(r: &mut $crate::codec::Reader<'_>) -> Result<Self, $crate::codec::DecodeError> {
                Ok($name { $($f: <$t as $crate::codec::Jute>::read(r)?),* })
            }
            #[allow(unused_variables)]
            fn write(&self, w: &mut Vec<u8>) {
                $($crate::codec::Jute::write(&self.$f, w);)*
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_buffer_and_string() {
        let mut w = Vec::new();
        put_i32(&mut w, -1);
        put_i32(&mut w, -1);
        let mut r = Reader::new(&w);
        assert_eq!(r.bytes().unwrap(), None);
        assert_eq!(r.string().unwrap(), "");
        r.finish().unwrap();
    }

    #[test]
    fn huge_vector_count_does_not_allocate() {
        let mut w = Vec::new();
        put_i32(&mut w, i32::MAX);
        let mut r = Reader::new(&w);
        assert!(matches!(r.vec::<i64>(), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn negative_length_is_an_error() {
        let mut w = Vec::new();
        put_i32(&mut w, -5);
        assert_eq!(Reader::new(&w).bytes(), Err(DecodeError::BadLength(-5)));
    }
}
