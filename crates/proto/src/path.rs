//! ZooKeeper's path rules (`PathUtils.validatePath`), its system paths,
//! and path arithmetic: one copy for the server (`is_valid`, which every
//! request's path passes) and the shell (`validate`, with the messages
//! zkCli prints).

/// The znodes every tree has, which no client may delete.
pub const ROOT: &str = "/";
pub const ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA: &str = "/zookeeper/quota";
pub const CONFIG: &str = "/zookeeper/config";

/// Is this one of the system nodes (`ROOT` … `CONFIG`)? ZooKeeper's
/// `isSpecialPath`: no client may delete them.
pub fn is_system(path: &str) -> bool {
    matches!(path, ROOT | ZOOKEEPER | QUOTA | CONFIG)
}

/// Whether `path` is a valid znode path, exactly as ZooKeeper decides:
/// absolute, no trailing slash, no empty, "." or ".." segment, no NUL or
/// control / private-use / non-character code points.
pub fn is_valid(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    // Every request's path passes here: no allocation.
    !rest.chars().any(bad_char)
        && rest
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// The code points ZooKeeper's PathUtils refuses in a path.
fn bad_char(c: char) -> bool {
    c <= '\u{1f}'
        || ('\u{7f}'..='\u{9f}').contains(&c)
        || ('\u{e000}'..='\u{f8ff}').contains(&c)
        || ('\u{fff0}'..='\u{ffff}').contains(&c)
}

/// The client's check (PathUtils.validatePath(path, isSequential)), with
/// the reason zkCli prints: "Invalid path string \"…\" caused by …". A
/// sequential create's path may end in "/" (the server appends the number).
pub fn validate(path: &str, sequential: bool) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') && !sequential {
        return Err("Path must not end with / character".into());
    }
    let b: Vec<char> = path.chars().collect();
    for i in 1..b.len() {
        let (c, last) = (b[i], b[i - 1]);
        let ends_segment = i + 1 == b.len() || b[i + 1] == '/';
        let reason = if c == '\0' {
            Some("null character not allowed")
        } else if c == '/' && last == '/' {
            Some("empty node name specified")
        } else if c == '.' && ends_segment && (last == '/' || (last == '.' && b[i - 2] == '/')) {
            // A segment "." or "..".
            Some("relative paths not allowed")
        } else if bad_char(c) {
            Some("invalid character")
        } else {
            None
        };
        if let Some(r) = reason {
            return Err(format!("Invalid path string \"{path}\" caused by {r} @{i}"));
        }
    }
    Ok(())
}

/// Splits "/a/b" into ("/a", "b") and "/a" into ("/", "a"). `None` when
/// there is no slash (not an absolute path).
pub fn split(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    let parent = if i == 0 { "/" } else { &path[..i] };
    Some((parent, &path[i + 1..]))
}

/// "/a/b/c" -> ["/a/b", "/a", "/"]: every proper ancestor, nearest first.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = if path == "/" { None } else { Some(path) };
    std::iter::from_fn(move || {
        let p = cur?;
        let (parent, _) = split(p)?;
        cur = if parent == "/" { None } else { Some(parent) };
        Some(parent)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first, char-by-char transcription of PathUtils.validatePath.
    fn reference(path: &str) -> bool {
        let b: Vec<char> = path.chars().collect();
        if b.is_empty() || b[0] != '/' {
            return false;
        }
        if b.len() == 1 {
            return true;
        }
        if b[b.len() - 1] == '/' {
            return false;
        }
        let mut last = '/';
        for (i, &c) in b.iter().enumerate().skip(1) {
            let bad_char = c == '\0'
                || (c > '\u{0}' && c <= '\u{1f}')
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || ('\u{e000}'..='\u{f8ff}').contains(&c)
                || ('\u{fff0}'..='\u{ffff}').contains(&c);
            if bad_char {
                return false;
            }
            if c == '/' && last == '/' {
                return false;
            }
            if c == '.' && last == '.' && b[i - 2] == '/' && (i + 1 == b.len() || b[i + 1] == '/') {
                return false;
            }
            if c == '.' && last == '/' && (i + 1 == b.len() || b[i + 1] == '/') {
                return false;
            }
            last = c;
        }
        true
    }

    proptest::proptest! {
        #[test]
        fn validation_matches_the_reference(p in "/?[/a.\u{0}\u{1}\u{7f}\u{e000}\u{fff0}é]{0,8}") {
            proptest::prop_assert_eq!(is_valid(&p), reference(&p), "{:?}", p);
            // The shell's check with its messages accepts exactly the same.
            proptest::prop_assert_eq!(validate(&p, false).is_ok(), is_valid(&p), "{:?}", p);
        }
    }

    #[test]
    fn validation_matches_zookeeper_path_utils() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/...", "/a/.b", "/ä", "/a b"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//a",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a\0",
            "/a\u{1}",
            "/\u{e000}",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn split_and_ancestors() {
        assert_eq!(split("/a"), Some(("/", "a")));
        assert_eq!(split("/a/b"), Some(("/a", "b")));
        assert_eq!(split("a"), None);
        assert_eq!(
            ancestors("/a/b/c").collect::<Vec<_>>(),
            vec!["/a/b", "/a", "/"]
        );
        assert_eq!(ancestors("/").count(), 0);
    }
}
