//! Opening a snapshot file as ZooKeeper's `SnapStream` does: the file's
//! suffix says how it is compressed (none, `.gz` for gzip, `.snappy` for
//! snappy-java's stream format), and the Adler32 checksums ("seals") are
//! taken over the uncompressed bytes.

use crate::ZkError;
use std::io::Read;
use std::path::Path;

/// How a snapshot file is stored, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
}

impl Compression {
    /// ZooKeeper's `SnapStream.getStreamMode`: the part after the zxid.
    pub fn of(name: &str) -> Result<Compression, String> {
        let mut parts = name.splitn(3, '.');
        let _prefix = parts.next();
        let _zxid = parts.next();
        match parts.next() {
            None => Ok(Compression::None),
            Some("gz") => Ok(Compression::Gzip),
            Some("snappy") => Ok(Compression::Snappy),
            Some(other) => Err(format!(
                "unknown snapshot compression suffix '.{other}' (ZooKeeper writes none, .gz or .snappy)"
            )),
        }
    }
}

/// snappy-java's `SnappyOutputStream` header: a magic, then its version
/// and the oldest compatible version, each a big-endian int.
const SNAPPY_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";

/// The uncompressed bytes of a snapshot file.
pub fn read_snapshot_bytes(path: &Path) -> Result<Vec<u8>, ZkError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let mode = Compression::of(name).map_err(|e| ZkError::corrupt(path, 0, e))?;
    let raw = crate::read_file(path)?;
    match mode {
        Compression::None => Ok(raw),
        Compression::Gzip => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .map_err(|e| ZkError::corrupt(path, 0, format!("gzip: {e}")))?;
            Ok(out)
        }
        Compression::Snappy => unsnappy(&raw).map_err(|(at, e)| ZkError::corrupt(path, at, e)),
    }
}

/// snappy-java's stream format: the header, then blocks, each a
/// big-endian int length and that many bytes of raw snappy.
fn unsnappy(raw: &[u8]) -> Result<Vec<u8>, (u64, String)> {
    if raw.len() < 16 || &raw[..8] != SNAPPY_MAGIC {
        return Err((0, "not a snappy-java stream (no SNAPPY header)".into()));
    }
    let mut out = Vec::new();
    let mut at = 16;
    let mut dec = snap::raw::Decoder::new();
    while at < raw.len() {
        if raw.len() - at < 4 {
            return Err((at as u64, "truncated snappy block length".into()));
        }
        let n = u32::from_be_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]) as usize;
        at += 4;
        if raw.len() - at < n {
            return Err((at as u64, format!("snappy block of {n} bytes is truncated")));
        }
        let block = dec
            .decompress_vec(&raw[at..at + n])
            .map_err(|e| (at as u64, format!("snappy: {e}")))?;
        out.extend_from_slice(&block);
        at += n;
    }
    Ok(out)
}

/// Java's `Adler32().getValue()` of `bytes`, as the long ZooKeeper writes.
pub fn adler32(bytes: &[u8]) -> i64 {
    let mut a = adler2::Adler32::new();
    a.write_slice(bytes);
    a.checksum() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_name_the_compression() {
        assert_eq!(Compression::of("snapshot.1f"), Ok(Compression::None));
        assert_eq!(Compression::of("snapshot.1f.gz"), Ok(Compression::Gzip));
        assert_eq!(
            Compression::of("snapshot.1f.snappy"),
            Ok(Compression::Snappy)
        );
        assert!(Compression::of("snapshot.1f.zst")
            .unwrap_err()
            .contains(".zst"));
    }

    #[test]
    fn adler32_is_javas() {
        // java.util.zip.Adler32 over "Wikipedia" is 0x11E60398.
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
    }

    #[test]
    fn snappy_java_streams_decode() {
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut raw = SNAPPY_MAGIC.to_vec();
        raw.extend_from_slice(&1i32.to_be_bytes());
        raw.extend_from_slice(&1i32.to_be_bytes());
        for chunk in body.chunks(32 * 1024) {
            let c = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            raw.extend_from_slice(&(c.len() as i32).to_be_bytes());
            raw.extend_from_slice(&c);
        }
        assert_eq!(unsnappy(&raw).unwrap(), body);
        assert!(unsnappy(&raw[..raw.len() - 3]).is_err());
        assert!(unsnappy(b"not snappy at all").is_err());
    }
}
