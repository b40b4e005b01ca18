//! A certificate's subject as ZooKeeper's `x509` identity: the distinguished
//! name in the form of Java's `X500Principal.getName()` (RFC 2253) —
//! most specific part first, commas without spaces, RFC 2253's keywords
//! (CN, C, L, ST, O, OU, STREET, DC, UID) and `OID=#hex` for the rest.

use x509_parser::der_parser::asn1_rs::{Any, Tag, ToDer};
use x509_parser::x509::AttributeTypeAndValue;

/// The keywords RFC 2253 (and so Java's RFC 2253 form) writes by name.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// The subject of a DER certificate; None when it cannot be parsed.
pub fn subject(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    let rdns: Vec<String> = cert
        .subject()
        .iter()
        .map(|rdn| rdn.iter().map(ava).collect::<Vec<_>>().join("+"))
        .collect();
    Some(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

fn ava(a: &AttributeTypeAndValue<'_>) -> String {
    let oid = a.attr_type().to_id_string();
    let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
    match (keyword, text(a.attr_value())) {
        (Some(k), Some(v)) => format!("{k}={}", escape(&v)),
        (k, _) => format!("{}=#{}", k.unwrap_or(&oid), hex(a.attr_value())),
    }
}

/// A string value's text; None for values that are not strings.
fn text(v: &Any<'_>) -> Option<String> {
    match v.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString => {
            std::str::from_utf8(v.data).ok().map(str::to_string)
        }
        // T.61 as Latin-1, as Java reads it.
        Tag::TeletexString => Some(v.data.iter().map(|&b| b as char).collect()),
        Tag::BmpString => {
            let units: Vec<u16> = v
                .data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 2253 §2.4: `,+"\<>;` escaped everywhere, `#` or a space at the
/// start and a space at the end escaped.
fn escape(v: &str) -> String {
    let n = v.chars().count();
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The value's whole DER encoding (tag, length, content) in hex.
fn hex(v: &Any<'_>) -> String {
    let der = v.to_der_vec().unwrap_or_default();
    der.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2253_escapes_only_what_it_must() {
        assert_eq!(escape("app1"), "app1");
        assert_eq!(escape("Example, Inc."), "Example\\, Inc.");
        assert_eq!(escape("a+b"), "a\\+b");
        assert_eq!(escape("#1 team "), "\\#1 team\\ ");
        assert_eq!(escape(" x"), "\\ x");
        assert_eq!(escape("a=b"), "a=b");
    }
}
