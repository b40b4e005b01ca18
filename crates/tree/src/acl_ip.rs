//! The `ip` ACL scheme as ZooKeeper 3.9's IPAuthenticationProvider reads
//! it: an IPv4 or IPv6 address, optionally `/bits` (CIDR), matched against
//! a client's address; and a client's address written as Java writes it
//! (`InetAddress.getHostAddress`), which is the identity clients see.

use std::net::IpAddr;

/// Java's `Integer.parseInt(s, radix)`: an optional sign, then at least
/// one digit, within i32.
fn java_int(s: &str, radix: u32) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i32::from_str_radix(s, radix).ok()
}

fn v4_bytes(addr: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    parts
        .iter()
        .map(|p| {
            java_int(p, 10)
                .filter(|v| (0..=255).contains(v))
                .map(|v| v as u8)
        })
        .collect()
}

fn v6_segments(out: &mut [u8], mut i: usize, segments: &[&str]) -> Option<()> {
    for s in segments {
        if s.is_empty() || s.len() > 4 {
            return None;
        }
        let v = java_int(s, 16)?;
        out[i] = (v >> 8) as u8;
        out[i + 1] = v as u8;
        i += 2;
    }
    Some(())
}

/// Java's `s.split(":", -1)`, but none for an empty string.
fn groups(s: &str) -> Vec<&str> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split(':').collect()
    }
}

fn v6_bytes(addr: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = addr.split("::").collect();
    let (first, second) = match parts[..] {
        [one] => {
            let s: Vec<&str> = one.split(':').collect();
            if s.len() != 8 {
                return None;
            }
            (s, Vec::new())
        }
        [a, b] => {
            let (a, b) = (groups(a), groups(b));
            if a.len() + b.len() >= 8 {
                return None;
            }
            (a, b)
        }
        _ => return None,
    };
    let mut out = vec![0u8; 16];
    v6_segments(&mut out, 0, &first)?;
    v6_segments(&mut out, 16 - second.len() * 2, &second)?;
    Some(out)
}

/// An address as bytes: IPv6 if it has a `:`, IPv4 if it has a `.`.
fn addr_bytes(addr: &str) -> Option<Vec<u8>> {
    if addr.contains(':') {
        v6_bytes(addr)
    } else if addr.contains('.') {
        v4_bytes(addr)
    } else {
        None
    }
}

/// The address and the prefix length of an ACL id; None when invalid.
fn acl_net(acl_id: &str) -> Option<(Vec<u8>, usize)> {
    let mut it = acl_id.splitn(2, '/');
    let addr = addr_bytes(it.next().unwrap_or(""))?;
    let max = addr.len() * 8;
    let bits = match it.next() {
        None => max,
        Some(b) => java_int(b, 10)
            .filter(|b| *b >= 0 && *b as usize <= max)
            .map(|b| b as usize)?,
    };
    Some((addr, bits))
}

/// Zeroes every bit after the first `bits`.
fn mask(b: &mut [u8], bits: usize) {
    for (i, byte) in b.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i * 8).min(8);
        *byte &= !(0xffu16 >> keep) as u8;
    }
}

/// `isValid`: an address, optionally `/bits` within its length.
pub fn valid(acl_id: &str) -> bool {
    acl_net(acl_id).is_some()
}

/// `matches`: the client's address is in the ACL's network.
pub fn matches(client: &str, acl_id: &str) -> bool {
    let (Some((mut net, bits)), Some(mut addr)) = (acl_net(acl_id), addr_bytes(client)) else {
        return false;
    };
    if addr.len() != net.len() {
        return false;
    }
    mask(&mut net, bits);
    mask(&mut addr, bits);
    net == addr
}

/// A client's address as ZooKeeper names it: dotted IPv4 (an IPv4-mapped
/// IPv6 address too, as Java makes it an IPv4 one), IPv6 as eight
/// hexadecimal groups without leading zeros and without `::`.
pub fn host_address(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_networks_as_zookeeper_3_9_reads_them() {
        for ok in [
            "127.0.0.1",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "1.2.3.4/32",
            "+1.2.3.4",
            "001.2.3.4",
            "::1",
            "::",
            "fe80::/10",
            "0:0:0:0:0:0:0:1",
            "2001:db8::/128",
            "1::",
            "::ffff",
        ] {
            assert!(valid(ok), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.4/33",
            "1.2.3.4/-1",
            "1.2.3.4/x",
            "::1/129",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::",
            "::g",
            ":::1",
            "1:2:3:4:5:6:7::8",
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
        ] {
            assert!(!valid(bad), "{bad}");
        }
        assert!(matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!matches("11.1.2.3", "10.0.0.0/8"));
        assert!(matches("192.168.1.77", "192.168.1.64/26"));
        assert!(!matches("192.168.1.128", "192.168.1.64/26"));
        assert!(matches("0:0:0:0:0:0:0:1", "::1"));
        assert!(matches("2001:db8:0:0:0:0:0:5", "2001:db8::/32"));
        assert!(!matches("2001:db9:0:0:0:0:0:5", "2001:db8::/32"));
        assert!(matches("fe80:0:0:0:1:2:3:4", "fe80::/10"));
        // An IPv4 client never matches an IPv6 network, nor the reverse.
        assert!(!matches("127.0.0.1", "::/0"));
        assert!(!matches("0:0:0:0:0:0:0:1", "0.0.0.0/0"));
        assert!(!matches("127.0.0.1", "127.0.0.1/x"));
    }

    #[test]
    fn client_addresses_as_java_writes_them() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(host_address(ip("127.0.0.1")), "127.0.0.1");
        assert_eq!(host_address(ip("::1")), "0:0:0:0:0:0:0:1");
        assert_eq!(host_address(ip("::ffff:10.0.0.1")), "10.0.0.1");
        assert_eq!(host_address(ip("2001:db8::ab:0")), "2001:db8:0:0:0:0:ab:0");
    }
}
