//! Email addresses, normalised (trimmed, lowercased) so that one mailbox is one account.

use std::fmt;

/// A plausible, normalised email address.
///
/// `Debug` masks it (`a***@example.com`): an address is personal data, and logs only need to tell
/// two of them apart.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why a string is not accepted as an email address. The message is what the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a valid email address")]
pub struct InvalidEmail;

const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;

impl Email {
    /// Trims, lowercases and checks `input`: one `@`, a local part of the characters RFC 5322 allows
    /// unquoted (no leading, trailing or double dots), and a domain of at least two LDH labels with
    /// a non-numeric top level. Quoted local parts, IP literals and non-ASCII addresses are refused.
    pub fn parse(input: &str) -> Result<Self, InvalidEmail> {
        let email = input.trim().to_ascii_lowercase();
        if email.len() > MAX_LEN || !email.is_ascii() {
            return Err(InvalidEmail);
        }
        let (local, domain) = email.split_once('@').ok_or(InvalidEmail)?;
        if !valid_local(local) || !valid_domain(domain) {
            return Err(InvalidEmail);
        }
        Ok(Self(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first character of the local part and the domain: `a***@example.com`.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or(("", &self.0));
        let first = local.chars().next().unwrap_or('*');
        format!("{first}***@{domain}")
    }
}

fn valid_local(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-.";
    (1..=MAX_LOCAL_LEN).contains(&local.len())
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=MAX_LABEL_LEN).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lowercased() {
        let email = Email::parse("  Alice.Smith+News@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "alice.smith+news@example.com");
    }

    #[test]
    fn plausible_addresses_are_accepted() {
        for ok in [
            "a@b.co",
            "first.last@sub.example.org",
            "o'reilly@example.ie",
            "x_y-z@exa-mple.com",
            &format!("{}@example.com", "a".repeat(64)),
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn implausible_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "plainaddress",
            "@example.com",
            "alice@",
            "alice@@example.com",
            "al ice@example.com",
            "alice@example",
            "alice@.example.com",
            "alice@example..com",
            "alice@-example.com",
            "alice@example-.com",
            "alice@127.0.0.1",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "\"alice\"@example.com",
            "alice@exämple.com",
            "alice\n@example.com",
            "a@b@example.com",
            &format!("{}@example.com", "a".repeat(65)),
            &format!("a@{}.com", "b".repeat(64)),
            &format!("a@{}.com", "b.".repeat(130)),
        ] {
            assert_eq!(Email::parse(bad), Err(InvalidEmail), "{bad:?}");
        }
    }

    #[test]
    fn debug_masks_the_address() {
        let email = Email::parse("alice@example.com").unwrap();
        assert_eq!(format!("{email:?}"), "Email(a***@example.com)");
        assert!(!format!("{email:?}").contains("alice"));
    }
}
