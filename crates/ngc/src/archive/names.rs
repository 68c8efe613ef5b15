//! Turning an entry name from an archive into a safe relative path.

/// The normalised `/`-separated relative path of an entry name, `Ok(None)` for names that
/// denote the root itself (`./`, a tar's first entry), or why the name is refused.
pub(crate) fn entry_path(name: &str) -> Result<Option<String>, &'static str> {
    if name.contains('\0') {
        return Err("its name contains a NUL byte");
    }
    let unified = name.replace('\\', "/");
    if unified.starts_with('/') {
        return Err("it is an absolute path");
    }
    let bytes = unified.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("it is an absolute path (drive letter)");
    }
    let mut parts = Vec::new();
    for part in unified.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("it contains a '..' path component"),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses() {
        assert_eq!(
            entry_path("./config/a.json").unwrap().as_deref(),
            Some("config/a.json")
        );
        assert_eq!(entry_path("dir/").unwrap().as_deref(), Some("dir"));
        assert_eq!(entry_path("a\\b").unwrap().as_deref(), Some("a/b"));
        assert_eq!(entry_path("./").unwrap(), None);
        for bad in [
            "../evil",
            "a/../../b",
            "a/..",
            "/etc/passwd",
            "\\x",
            "C:evil",
            "a\0b",
        ] {
            assert!(entry_path(bad).is_err(), "{bad:?}");
        }
    }
}
