//! zkCli 3.9's differences from 3.8, when `--zkcli 3.9` asks for them
//! (`crate::ZKCLI_39`): `get`'s and `set`'s usage with their options
//! listed, `get -b` (base64) and `get -x` (Netty's hex dump), `set -b`
//! (base64 data), and `removewatches -p|-r`; watch events print their zxid
//! (`client::Event`).

use base64::Engine;

/// The usage zkCli 3.9 prints for a command with its options listed
/// (commons-cli's HelpFormatter), for those that have them.
pub(super) fn usage(cmd: &str) -> Option<&'static str> {
    Some(match cmd {
        "get" => {
            "get [-s] [-w] [-b] [-x] path\n -b   Output data in base64 format\n -s   Print znode stats additionally\n -w   Watch for changes on the znode\n -x   Output data in hexdump format\n"
        }
        "set" => {
            "set path data [-s] [-v version] [-b]\n -b         Supply data in base64 format\n -s         Print znode stats additionally\n -v <arg>   Set with an expected version\n"
        }
        _ => return None,
    })
}

/// The first line of `usage`: what the general usage lists.
pub(super) fn usage_line(cmd: &str) -> Option<&'static str> {
    usage(cmd).and_then(|u| u.lines().next())
}

pub(super) fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Java's `Base64.getDecoder()`: padding optional.
pub(super) fn from_base64(text: &str) -> Option<Vec<u8>> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(text).ok()
}

/// Netty's `ByteBufUtil.prettyHexDump`: a framed table of 16 bytes a row,
/// offsets, hex and the printable ASCII; nothing for no bytes.
pub(super) fn hex_dump(data: &[u8]) -> String {
    use std::fmt::Write;
    if data.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "         +-------------------------------------------------+\n         |  0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f |\n+--------+-------------------------------------------------+----------------+",
    );
    for (row, chunk) in data.chunks(16).enumerate() {
        let _ = write!(out, "\n|{:08x}|", row * 16);
        for b in chunk {
            let _ = write!(out, " {b:02x}");
        }
        out.push_str(&"   ".repeat(16 - chunk.len()));
        out.push_str(" |");
        for b in chunk {
            out.push(if (32..127).contains(b) {
                *b as char
            } else {
                '.'
            });
        }
        out.push_str(&" ".repeat(16 - chunk.len()));
        out.push('|');
    }
    out.push_str("\n+--------+-------------------------------------------------+----------------+");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hex_dump_as_netty_writes_it() {
        assert_eq!(
            hex_dump(b"hello"),
            "         +-------------------------------------------------+\n         |  0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f |\n+--------+-------------------------------------------------+----------------+\n|00000000| 68 65 6c 6c 6f                                  |hello           |\n+--------+-------------------------------------------------+----------------+"
        );
        let d = hex_dump(b"0123456789abcdefghijklmnopqrstuvwxyz\x01");
        assert!(d.contains(
            "\n|00000010| 67 68 69 6a 6b 6c 6d 6e 6f 70 71 72 73 74 75 76 |ghijklmnopqrstuv|\n"
        ));
        assert!(d.contains(
            "\n|00000020| 77 78 79 7a 01                                  |wxyz.           |\n"
        ));
        assert_eq!(hex_dump(b""), "");
        assert_eq!(from_base64("aGkgdGhlcmU"), Some(b"hi there".to_vec()));
        assert_eq!(base64(b"hello"), "aGVsbG8=");
    }
}
