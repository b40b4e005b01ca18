//! Java KeyStore (JKS) files, read as the JDK's `JavaKeyStore` and
//! `KeyProtector` read them: private key entries (their key protected by
//! Sun's SHA-1 keystream, opened with the store's password, as ZooKeeper
//! does) with their certificate chains, trusted certificate entries, and
//! the SHA-1 integrity check over the whole file ("Mighty Aphrodite").

use sha1::{Digest, Sha1};

pub const MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];

/// Sun's key protection algorithm (`KeyProtector.KEY_PROTECTOR_OID`).
const KEY_PROTECTOR_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];

#[derive(Debug, Default)]
pub struct Jks {
    /// Each private key entry: its PKCS#8 key and certificate chain.
    pub keys: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    /// The trusted certificate entries.
    pub trusted: Vec<Vec<u8>>,
}

struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("the file ends early: not a whole JKS store".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    /// `DataInput.readUTF`: a 2-byte length and the bytes (only skipped here).
    fn utf(&mut self) -> Result<(), String> {
        let n = u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        self.take(n).map(|_| ())
    }
    fn blob(&mut self) -> Result<Vec<u8>, String> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}

/// A Java `char[]` password as the JDK hashes it: UTF-16 big-endian.
fn password_bytes(password: &str) -> Vec<u8> {
    password
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect()
}

pub fn parse(data: &[u8], password: &str) -> Result<Jks, String> {
    if data.len() < 4 + 20 || data[..4] != MAGIC {
        return Err("not a JKS store".into());
    }
    let (body, digest) = data.split_at(data.len() - 20);
    let pw = password_bytes(password);
    let mut h = Sha1::new();
    h.update(&pw);
    h.update(b"Mighty Aphrodite");
    h.update(body);
    if h.finalize().as_slice() != digest {
        return Err(
            "the password does not open it (or the file was altered): its integrity check fails"
                .into(),
        );
    }
    let mut r = In(&body[4..]);
    let version = r.u32()?;
    if version != 1 && version != 2 {
        return Err(format!("JKS version {version} is not known"));
    }
    let count = r.u32()?;
    let mut out = Jks::default();
    for _ in 0..count {
        let tag = r.u32()?;
        r.utf()?; // alias
        r.take(8)?; // date
        match tag {
            1 => {
                let protected = r.blob()?;
                let n = r.u32()?;
                let mut chain = Vec::new();
                for _ in 0..n {
                    if version == 2 {
                        r.utf()?; // "X.509"
                    }
                    chain.push(r.blob()?);
                }
                out.keys.push((recover(&protected, &pw)?, chain));
            }
            2 => {
                if version == 2 {
                    r.utf()?;
                }
                out.trusted.push(r.blob()?);
            }
            // 3: a secret key (JCEKS only).
            t => return Err(format!("entry type {t} is not one a JKS store holds")),
        }
    }
    Ok(out)
}

/// One DER element: (tag, content, rest).
fn der(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let bad = || "a protected key that is not DER".to_string();
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, rest) = rest.split_first().ok_or_else(bad)?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad());
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// `KeyProtector.recover`: the PKCS#8 key inside an EncryptedPrivateKeyInfo.
fn recover(protected: &[u8], pw: &[u8]) -> Result<Vec<u8>, String> {
    let (_, info, _) = der(protected)?;
    let (_, algorithm, rest) = der(info)?;
    let (_, oid, _) = der(algorithm)?;
    if oid != KEY_PROTECTOR_OID {
        return Err(
            "a private key protected by an algorithm other than JKS's own (a JCEKS store?)".into(),
        );
    }
    let (_, encrypted, _) = der(rest)?;
    if encrypted.len() < 40 {
        return Err("a protected key too short to hold one".into());
    }
    let (salt, rest) = encrypted.split_at(20);
    let (sealed, check) = rest.split_at(rest.len() - 20);
    let mut key = Vec::with_capacity(sealed.len());
    let mut block = salt.to_vec();
    for chunk in sealed.chunks(20) {
        let mut h = Sha1::new();
        h.update(pw);
        h.update(&block);
        block = h.finalize().to_vec();
        key.extend(chunk.iter().zip(&block).map(|(a, b)| a ^ b));
    }
    let mut h = Sha1::new();
    h.update(pw);
    h.update(&key);
    if h.finalize().as_slice() != check {
        return Err("the store's password does not open its private key (ZooKeeper uses the store's password for the key too)".into());
    }
    Ok(key)
}
