//! The password of a ZooKeeper session. ZooKeeper never stores session
//! passwords: it derives one from the session id whenever it needs it
//! (`ZooKeeperServer.generatePasswd`: `new java.util.Random(id ^
//! 0xB3415C00L).nextBytes(16 bytes)`), so a session taken over from
//! ZooKeeper's files must be checked against the same derivation.

const SUPER_SECRET: i64 = 0xB341_5C00;

/// `java.util.Random`: a 48-bit linear congruential generator (its
/// documented algorithm, which every Java implements identically).
struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> Self {
        JavaRandom {
            seed: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next_int(&mut self) -> i32 {
        self.seed = (self.seed.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.seed >> 16) as i32
    }

    /// `Random.nextBytes`: each int fills up to four bytes, low byte first.
    fn next_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(4) {
            let mut r = self.next_int();
            for b in chunk {
                *b = r as u8;
                r >>= 8;
            }
        }
    }
}

/// The 16-byte password ZooKeeper gives session `session_id`.
pub fn session_password(session_id: i64) -> [u8; 16] {
    let mut p = [0u8; 16];
    JavaRandom::new(session_id ^ SUPER_SECRET).next_bytes(&mut p);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn java_random_matches_its_specification() {
        // new Random(42).nextInt() is -1170105035 on every JVM.
        assert_eq!(JavaRandom::new(42).next_int(), -1_170_105_035);
        let mut r = JavaRandom::new(0);
        assert_eq!(r.next_int(), -1_155_484_576);
        assert_eq!(r.next_int(), -723_955_400);
    }

    #[test]
    fn passwords_are_the_ones_zookeeper_handed_out() {
        // Session ids and passwords that ZooKeeper 3.8 sent in its connect
        // responses, captured in tests/golden/zookeeper-3.8.jsonl.
        let golden = include_str!("../../../tests/golden/zookeeper-3.8.jsonl");
        let mut seen = 0;
        for line in golden.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["name"].as_str().is_some_and(|n| n.starts_with("connect")) {
                let id = v["meant"]["session_id"].as_i64().unwrap();
                let want = v["meant"]["passwd"].as_str().unwrap();
                assert_eq!(hex(&session_password(id)), want, "session 0x{id:x}");
                seen += 1;
            }
        }
        assert_eq!(seen, 2);
    }
}
