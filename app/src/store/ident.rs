//! Identifiers that name things in the schema (entity types, property keys, relation types).
//!
//! They are checked here before any query, and again by CHECK constraints in the database;
//! later the graph projection relies on them being plain `[a-z][a-z0-9_]*`.

use super::StoreError;

pub const MAX_IDENT_LEN: usize = 63;

pub fn is_valid_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= MAX_IDENT_LEN
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

pub fn check_ident(what: &str, s: &str) -> Result<(), StoreError> {
    if is_valid_ident(s) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{what} {:?} is not a valid identifier (lowercase letter first, then a-z, 0-9 or _, at most {MAX_IDENT_LEN})",
            crate::text::clip(s)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_identifiers() {
        for ok in ["user", "tor_function", "a", "x9_y", &"a".repeat(63)] {
            assert!(is_valid_ident(ok), "{ok}");
        }
    }

    #[test]
    fn rejects_hostile_or_odd_identifiers() {
        for bad in [
            "",
            "User",
            "9lives",
            "_x",
            "a-b",
            "a.b",
            "a b",
            "a`b",
            "a'b",
            "a\"b",
            "a}b",
            "ä",
            "x;DROP TABLE entities",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_ident(bad), "{bad:?}");
        }
    }
}
