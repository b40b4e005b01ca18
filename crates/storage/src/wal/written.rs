//! Reading a log segment without its unwritten tail. A segment is
//! preallocated (`preAllocSize`, 64 MiB by default) and mostly never
//! written; reading all of it faults in every page of zeros — half a
//! second at startup on a cold cache, for a few kilobytes of records. The
//! filesystem knows which ranges hold data (`SEEK_DATA`/`SEEK_HOLE`: ext4,
//! xfs, btrfs and tmpfs report preallocated, unwritten ranges as holes),
//! so only those are read; the rest reads as the zeros it is. Where the
//! filesystem cannot tell, the whole file is read as before.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// The file's bytes up to the end of its last range that holds data;
/// ranges between are zeros. What is left out past the end is zeros too.
pub(super) fn read_written(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let ranges = data_ranges(&file, len).unwrap_or_else(|| vec![(0, len)]);
    let end = ranges.last().map_or(0, |r| r.1);
    let mut buf = vec![0u8; end as usize];
    for (from, to) in ranges {
        file.read_exact_at(&mut buf[from as usize..to as usize], from)?;
    }
    Ok(buf)
}

/// The ranges holding data, in order; None when the filesystem cannot
/// say (then all of it counts as data).
fn data_ranges(file: &File, len: u64) -> Option<Vec<(u64, u64)>> {
    let fd = file.as_raw_fd();
    let mut ranges = Vec::new();
    let mut at = 0u64;
    while at < len {
        // SAFETY: lseek on a descriptor we own; no memory is passed.
        let data = unsafe { libc::lseek(fd, at as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            return match io::Error::last_os_error().raw_os_error() {
                // No data at or after `at`.
                Some(libc::ENXIO) => Some(ranges),
                _ => None,
            };
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return None;
        }
        let (data, hole) = (data as u64, (hole as u64).min(len));
        if hole <= data {
            return None;
        }
        ranges.push((data, hole));
        at = hole;
    }
    Some(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preallocated_file_reads_as_its_written_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        // SAFETY: a plain syscall on a descriptor we own.
        assert_eq!(
            unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, 8 << 20) },
            0
        );
        f.write_all_at(b"header", 0).unwrap();
        f.write_all_at(b"later", 3 << 20).unwrap();
        let buf = read_written(&path).unwrap();
        assert_eq!(&buf[..6], b"header");
        assert_eq!(&buf[3 << 20..(3 << 20) + 5], b"later");
        assert!(buf[6..3 << 20].iter().all(|b| *b == 0));
        // Whatever the filesystem, nothing written is left out.
        assert!(buf.len() >= (3 << 20) + 5 && buf.len() <= 8 << 20);
        let whole = std::fs::read(&path).unwrap();
        assert_eq!(&whole[..buf.len()], &buf[..]);
        assert!(whole[buf.len()..].iter().all(|b| *b == 0));
    }
}
