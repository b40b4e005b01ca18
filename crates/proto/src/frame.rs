//! Framing on the client port: a 4-byte big-endian length, then that many
//! bytes. A frame longer than `jute.maxbuffer` is refused before any of it
//! is buffered.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame length {len} exceeds jute.maxbuffer {max_bytes}")]
    TooLarge { len: i64, max_bytes: usize },
    #[error("negative frame length {0}")]
    Negative(i32),
}

/// Looks at the start of `buf`: `Ok(None)` when a whole frame is not there
/// yet, else the frame body's length (the frame takes `4 + len` bytes).
pub fn frame_len(buf: &[u8], max_bytes: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 {
        return Err(FrameError::Negative(len));
    }
    if len as usize > max_bytes {
        return Err(FrameError::TooLarge {
            len: len as i64,
            max_bytes,
        });
    }
    if buf.len() < 4 + len as usize {
        return Ok(None);
    }
    Ok(Some(len as usize))
}

/// Starts a frame in `w`: reserves the length prefix; `finish_frame` fills it.
pub fn start_frame(w: &mut Vec<u8>) -> usize {
    let at = w.len();
    w.extend_from_slice(&[0; 4]);
    at
}

pub fn finish_frame(w: &mut [u8], at: usize) {
    let len = (w.len() - at - 4) as i32;
    w[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_frames_need_more_bytes() {
        assert_eq!(frame_len(&[0, 0], 100), Ok(None));
        assert_eq!(frame_len(&[0, 0, 0, 3, 1, 2], 100), Ok(None));
        assert_eq!(frame_len(&[0, 0, 0, 3, 1, 2, 3], 100), Ok(Some(3)));
    }

    #[test]
    fn oversized_and_negative_frames_are_refused() {
        assert!(matches!(
            frame_len(&[0, 0, 1, 0], 255),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(
            frame_len(&[0xff, 0xff, 0xff, 0xff], 255),
            Err(FrameError::Negative(-1))
        );
    }

    #[test]
    fn frame_prefix_is_body_length() {
        let mut w = vec![9];
        let at = start_frame(&mut w);
        w.extend_from_slice(b"abc");
        finish_frame(&mut w, at);
        assert_eq!(w, vec![9, 0, 0, 0, 3, b'a', b'b', b'c']);
    }
}
