//! The JAAS login configuration file ZooKeeper names with
//! `-Djava.security.auth.login.config=FILE`, read as the JDK reads it, and
//! the SASL users its `Server` section (or `zookeeper.sasl.serverconfig`)
//! gives DIGEST-MD5, as ZooKeeper's `SaslServerCallbackHandler` takes them
//! (`user_NAME="password"` options of `DigestLoginModule`).
//!
//! The file's syntax:
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="secret"
//!     user_app="password";
//! };
//! ```
//!
//! sections of login modules, each a class name, a control flag
//! (`required`, `requisite`, `sufficient`, `optional`) and `key=value`
//! options ending with `;`; values quoted or bare; `//` and `/* */`
//! comments. A malformed file is an error naming file and line.
//!
//! Not here: the DIGEST-MD5 exchange (`node::sasl`).

use crate::config::AuthSettings;
use node::sasl::SaslConfig;
use std::collections::BTreeMap;
use std::path::Path;

/// ZooKeeper's default JAAS section for the server's SASL login.
pub const DEFAULT_SECTION: &str = "Server";

/// One login module line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub class: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

/// A parsed JAAS file: each section's name and its modules, in file order.
pub type Sections = Vec<(String, Vec<Module>)>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

/// Tokens with the line each starts on.
fn tokens(text: &str) -> Result<Vec<(usize, Tok)>, (usize, String)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '/' if it.peek() == Some(&'/') => {
                while it.peek().is_some_and(|c| *c != '\n') {
                    it.next();
                }
            }
            '/' if it.peek() == Some(&'*') => {
                let start = line;
                it.next();
                let mut prev = ' ';
                loop {
                    match it.next() {
                        None => return Err((start, "unterminated /* comment".into())),
                        Some('/') if prev == '*' => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            prev = c;
                        }
                    }
                }
            }
            '{' | '}' | ';' | '=' => out.push((line, Tok::Punct(c))),
            '"' => {
                let start = line;
                let mut v = String::new();
                loop {
                    match it.next() {
                        None => return Err((start, "unterminated quoted string".into())),
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some('n') => v.push('\n'),
                            Some('t') => v.push('\t'),
                            Some(c) => v.push(c),
                            None => return Err((start, "unterminated quoted string".into())),
                        },
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            v.push(c)
                        }
                    }
                }
                out.push((start, Tok::Quoted(v)));
            }
            c => {
                let mut w = String::from(c);
                while let Some(&n) = it.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '=' | '"') {
                        break;
                    }
                    w.push(n);
                    it.next();
                }
                out.push((line, Tok::Word(w)));
            }
        }
    }
    Ok(out)
}

/// The sections of a JAAS file's text; errors carry the line.
pub fn parse(text: &str) -> Result<Sections, (usize, String)> {
    let toks = tokens(text)?;
    let mut i = 0;
    let last_line = toks.last().map_or(1, |t| t.0);
    let at = |i: usize| toks.get(i).map_or(last_line, |t| t.0);
    let expect = |i: usize, p: char, what: &str| match toks.get(i) {
        Some((_, Tok::Punct(c))) if *c == p => Ok(()),
        _ => Err((at(i), format!("expected '{p}' {what}"))),
    };
    let mut sections: Sections = Vec::new();
    while i < toks.len() {
        let name = match &toks[i].1 {
            Tok::Word(w) => w.clone(),
            _ => return Err((at(i), "expected a section name".into())),
        };
        if sections.iter().any(|(n, _)| *n == name) {
            return Err((at(i), format!("section {name} is given twice")));
        }
        expect(i + 1, '{', &format!("after section name {name}"))?;
        i += 2;
        let mut modules = Vec::new();
        loop {
            match toks.get(i) {
                Some((_, Tok::Punct('}'))) => break,
                Some((_, Tok::Word(class))) => {
                    let class = class.clone();
                    let flag = match toks.get(i + 1) {
                        Some((_, Tok::Word(f)))
                            if ["required", "requisite", "sufficient", "optional"]
                                .contains(&f.to_ascii_lowercase().as_str()) =>
                        {
                            f.to_ascii_lowercase()
                        }
                        _ => {
                            return Err((
                                at(i + 1),
                                format!(
                                    "expected a control flag (required, requisite, sufficient, optional) after {class}"
                                ),
                            ))
                        }
                    };
                    i += 2;
                    let mut options = BTreeMap::new();
                    loop {
                        match toks.get(i) {
                            Some((_, Tok::Punct(';'))) => break,
                            Some((_, Tok::Word(k))) => {
                                expect(i + 1, '=', &format!("after option {k}"))?;
                                let v = match toks.get(i + 2) {
                                    Some((_, Tok::Word(v) | Tok::Quoted(v))) => v.clone(),
                                    _ => {
                                        return Err((
                                            at(i + 2),
                                            format!("expected a value for option {k}"),
                                        ))
                                    }
                                };
                                options.insert(k.clone(), v);
                                i += 3;
                            }
                            _ => {
                                return Err((
                                    at(i),
                                    format!("expected an option or ';' in module {class}"),
                                ))
                            }
                        }
                    }
                    i += 1;
                    modules.push(Module {
                        class,
                        flag,
                        options,
                    });
                }
                _ => {
                    return Err((
                        at(i),
                        format!("expected a login module or '}}' in section {name}"),
                    ))
                }
            }
        }
        expect(i + 1, ';', &format!("after the '}}' of section {name}"))?;
        i += 2;
        sections.push((name, modules));
    }
    Ok(sections)
}

/// What the server's SASL login is: None when the JAAS file has no such
/// section, or no file is named (ZooKeeper then runs without SASL). An
/// error for what ZooKeeper refuses to start with, and for a section this
/// server cannot honour (Kerberos).
pub fn load(auth: &AuthSettings) -> Result<Option<SaslConfig>, String> {
    let section = auth.login_context.as_deref().unwrap_or(DEFAULT_SECTION);
    let Some(file) = &auth.jaas_file else {
        if auth.login_context.is_some() {
            // ZooKeeper: "No JAAS configuration section named ... was found.
            // But zookeeper.sasl.serverconfig was set."
            return Err(format!(
                "zookeeper.sasl.serverconfig is {section}, but no JAAS file is given (-Djava.security.auth.login.config=FILE)"
            ));
        }
        return Ok(None);
    };
    let sections = read(file).map_err(|e| {
        format!(
            "No JAAS configuration section named '{section}' was found in '{}': {e}",
            file.display()
        )
    })?;
    let Some((_, modules)) = sections.iter().find(|(n, _)| n == section) else {
        tracing::info!(
            "{}: no JAAS section '{section}': SASL is off",
            file.display()
        );
        return Ok(None);
    };
    let mut users = BTreeMap::new();
    for m in modules {
        if !m.class.ends_with("DigestLoginModule") {
            return Err(format!(
                "{}: JAAS section '{section}' uses {}: only DigestLoginModule (SASL DIGEST-MD5) is supported; Kerberos (GSSAPI) is not yet",
                file.display(),
                m.class
            ));
        }
        for (k, v) in &m.options {
            if let Some(user) = k.strip_prefix("user_") {
                users.insert(user.to_string(), v.clone());
            }
        }
    }
    tracing::info!(
        "SASL DIGEST-MD5: {} users from section '{section}' of {}",
        users.len(),
        file.display()
    );
    Ok(Some(SaslConfig {
        users,
        super_password: auth.super_password.clone(),
        super_users: auth.super_users.clone(),
        allow_failed: auth.allow_sasl_failed,
    }))
}

pub(crate) fn read(file: &Path) -> Result<Sections, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read it: {e}"))?;
    parse(&text).map_err(|(line, msg)| format!("line {line}: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file kazoo's test harness writes for SASL tests.
    const KAZOO: &str = r#"
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};"#;

    fn settings(file: &Path) -> AuthSettings {
        AuthSettings {
            jaas_file: Some(file.to_path_buf()),
            ..Default::default()
        }
    }

    #[test]
    fn kazoos_file_gives_two_users() {
        let s = parse(KAZOO).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, "Server");
        let m = &s[0].1[0];
        assert_eq!(
            m.class,
            "org.apache.zookeeper.server.auth.DigestLoginModule"
        );
        assert_eq!(m.flag, "required");
        assert_eq!(m.options["user_jaasuser"], "jaas_password");
    }

    #[test]
    fn comments_bare_values_and_several_sections() {
        let text = "// a comment\nClient { org.apache.zookeeper.server.auth.DigestLoginModule required\n username=bob /* inline */ password=\"p;w\"; };\n\
                    Server{x.DigestLoginModule Optional user_a=\"x\\\"y\";};";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].1[0].options["username"], "bob");
        assert_eq!(s[0].1[0].options["password"], "p;w");
        assert_eq!(s[1].1[0].flag, "optional");
        assert_eq!(s[1].1[0].options["user_a"], "x\"y");
    }

    #[test]
    fn malformed_files_name_the_line() {
        for (text, line, says) in [
            (
                "Server {\n m required\n a=\"b\"\n",
                3,
                "expected an option or ';'",
            ),
            ("Server {\n m mandatory a=b; };", 2, "control flag"),
            (
                "Server {\n m required a b; };",
                2,
                "expected '=' after option a",
            ),
            (
                "Server { m required; }\nClient {};",
                2,
                "expected ';' after the '}' of section Server",
            ),
            ("S { };\nS { };", 2, "given twice"),
            ("S {\n m required a=\"x;\n };", 2, "unterminated"),
        ] {
            let (l, msg) = parse(text).unwrap_err();
            assert_eq!(l, line, "{text}: {msg}");
            assert!(msg.contains(says), "{text}: {msg}");
        }
    }

    #[test]
    fn load_finds_the_users_or_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("jaas.conf");
        std::fs::write(&f, KAZOO).unwrap();
        let mut s = settings(&f);
        s.super_users = vec!["jaasuser".into()];
        let c = load(&s).unwrap().unwrap();
        assert_eq!(c.users.len(), 2);
        assert_eq!(c.super_users, vec!["jaasuser".to_string()]);

        // Another section name: none there, so no SASL, as ZooKeeper.
        s.login_context = Some("Other".into());
        assert_eq!(load(&s).unwrap(), None);
        // An empty file (kazoo's harness writes one when SASL is not tested).
        std::fs::write(&f, "").unwrap();
        assert_eq!(load(&settings(&f)).unwrap(), None);
        // No file at all: ZooKeeper refuses to start.
        let e = load(&settings(&dir.path().join("nope"))).unwrap_err();
        assert!(
            e.contains("No JAAS configuration section named 'Server' was found in"),
            "{e}"
        );
        // Kerberos cannot be honoured: said, not ignored.
        std::fs::write(
            &f,
            "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };",
        )
        .unwrap();
        let e = load(&settings(&f)).unwrap_err();
        assert!(e.contains("Kerberos (GSSAPI) is not yet"), "{e}");
        // A section name without a file.
        let e = load(&AuthSettings {
            login_context: Some("Server".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("no JAAS file"), "{e}");
        // No file and no section name: no SASL.
        assert_eq!(load(&AuthSettings::default()).unwrap(), None);
    }
}
