//! Login limits that slow guessing without letting anyone lock an owner out.
//!
//! Three counters, each per fixed window of [`LoginLimit::WINDOW`]:
//!
//! | counter | keyed on | counts | at the limit |
//! |---|---|---|---|
//! | pair | (email, client address) | attempts | that address gets 429 for that email |
//! | email | email | attempts | addresses the owner never signed in from get 429 for that email |
//! | address | client address | failures, any email | that address gets 429 for every email (spraying) |
//!
//! # Why this shape
//! - A limit per email alone (what this module did before) lets anyone who knows an address keep
//!   its owner out, one cheap request per window. The strict limit is therefore per *pair*: an
//!   attacker at their limit does not touch the owner's logins from the owner's own address.
//! - An attacker with many addresses gets [`LoginLimit::PER_PAIR`] tries per address per window.
//!   The much looser per-email ceiling ([`LoginLimit::PER_EMAIL`]) caps that at a rate where
//!   guessing a password that passed the sign-up rules stays pointless. It does not apply to a
//!   *trusted* pair: an address that signed in to the account successfully within
//!   [`LoginLimit::TRUST`], so the owner's home and office networks keep working during such an
//!   attack. Only a first login from a new network can be held up by it, for the rest of the
//!   window.
//! - Password spraying (one common password tried against many accounts) stays under every
//!   per-email count. The address counter counts failures from one address across all emails;
//!   past [`LoginLimit::PER_ADDRESS_FAILURES`] that address is refused for every email, a WARN line
//!   says so (with the address, never the emails) and the `LoginFailures` metric feeds an alarm.
//!   Successes do not count, so a busy office behind one NAT address is not refused for its
//!   people's logins, only for their failures.
//!
//! # The client address
//! API Gateway's `requestContext.identity.sourceIp`: the address of the TCP connection, which a
//! client cannot choose. `X-Forwarded-For` and similar headers are whatever the client writes and
//! are never read. IPv6 addresses count per /64: one customer is usually handed a whole /64, so
//! counting single addresses would give one attacker 2^64 of them.
//!
//! # How the counting stays honest
//! In this order, before the password hash, for known and unknown emails alike:
//! 1. The address's failures are read; at [`LoginLimit::PER_ADDRESS_FAILURES`] the login is
//!    refused. A read, not a reservation: parallel failures from one address can pass it by the
//!    number in flight, which the per-pair limit still bounds for each account.
//! 2. The attempt is *reserved* on the pair: one conditional UpdateItem (`ADD` one, on the
//!    condition that the count is below the limit), so twenty parallel guesses for one pair get
//!    at most [`LoginLimit::PER_PAIR`] hashes.
//! 3. The attempt is reserved on the email the same way. Only when that is refused is the pair's
//!    trust mark read: a trusted pair goes on (uncounted), any other is refused.
//!
//! Separate conditional writes, not one transaction: DynamoDB serialises plain writes to a hot
//! item, while concurrent transactions on it fail with TransactionConflict, and the email counter
//! is exactly the item an attack makes hot; a transaction there would turn the attack into 503s
//! for the owner. An attempt refused at step 3 has used one of its pair's attempts.
//!
//! - Windows are fixed ([`Window`]): each window's counter is its own item, so a new window needs
//!   no reset and no read. The wait a 429 states (`Retry-After`) is the time to the window's end.
//!   The price is the boundary: a pair can make its attempts at the end of one window and again at
//!   the start of the next, at most twice [`LoginLimit::PER_PAIR`] in any span of one window.
//! - Refused attempts are not counted, so hammering does not extend a window.
//! - A failed login (wrong password or unknown email) counts one failure on the address.
//! - A successful login deletes its pair's counter (a person who mistyped starts afresh) and marks
//!   the pair trusted.
//! - Every counter is keyed on a SHA-256 of the normalised email and/or the address, known email
//!   or not, so an unknown email is counted, refused and answered exactly like a known one, and
//!   the table holds no plain addresses. The items expire through the table's TTL.
//!
//! What the trust exemption gives away: while an email is at its ceiling, someone who shares an
//! address the owner signed in from (the same office NAT) can tell that the email has an account
//! (a 401 there, a 429 elsewhere). That needs the owner's network and an attack in progress, and
//! it is the price of never locking the owner out of their own network.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    time::Duration,
};

use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};

use crate::domain::Email;

/// The limits.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimit;

impl LoginLimit {
    /// Attempts per (email, address) per window; the next one is refused.
    pub const PER_PAIR: u32 = 5;
    /// Attempts per email per window from addresses that are not trusted for it.
    pub const PER_EMAIL: u32 = 50;
    /// Failed logins per address per window, across all emails, before that address is refused.
    pub const PER_ADDRESS_FAILURES: u32 = 20;
    /// The length of a window.
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    /// How long a successful login keeps its pair trusted (renewed by every success).
    pub const TRUST: Duration = Duration::from_secs(30 * 24 * 60 * 60);
}

/// Where a login comes from: the connection's address as API Gateway saw it, IPv6 cut to its /64.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientAddress(String);

impl ClientAddress {
    /// The address from API Gateway's `sourceIp`. Without one (a local tool that sends none) every
    /// such request shares one address, `unknown`, and so one set of counters.
    pub fn from_source_ip(source_ip: Option<&str>) -> Self {
        match source_ip.and_then(|ip| ip.trim().parse::<IpAddr>().ok()) {
            Some(IpAddr::V4(v4)) => Self(v4.to_string()),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(v4.to_string()),
                None => {
                    let [a, b, c, d, ..] = v6.segments();
                    let prefix = Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0);
                    Self(format!("{prefix}/64"))
                }
            },
            None => Self("unknown".to_owned()),
        }
    }

    /// The address as counted (for the spraying WARN line).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientAddress({})", self.0)
    }
}

/// A window of [`LoginLimit::WINDOW`]: windows are numbered from the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window(i64);

impl Window {
    /// The window `at` falls in.
    pub fn at(at: DateTime<Utc>) -> Self {
        Self(at.timestamp().div_euclid(window_secs()))
    }

    /// The window's number.
    pub fn number(self) -> i64 {
        self.0
    }

    /// When the window ends (its counters' TTL).
    pub fn ends_at(self) -> DateTime<Utc> {
        let end = self.0.saturating_add(1).saturating_mul(window_secs());
        Utc.timestamp_opt(end, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// How long from `now` until the window ends, at least one second (a `Retry-After` of 0 would
    /// invite an immediate retry into the same window).
    pub fn retry_after(self, now: DateTime<Utc>) -> Duration {
        let left = (self.ends_at() - now).num_seconds();
        Duration::from_secs(u64::try_from(left).unwrap_or(0).max(1))
    }
}

fn window_secs() -> i64 {
    i64::try_from(LoginLimit::WINDOW.as_secs()).unwrap_or(i64::MAX)
}

/// A counter's key: the hex SHA-256 of what it counts, with the counter's kind in front.
#[derive(Clone, PartialEq, Eq)]
pub struct CounterKey(String);

impl CounterKey {
    /// The (email, address) pair's key.
    pub fn pair(email: &Email, address: &ClientAddress) -> Self {
        Self::digest("pair", &[email.as_str(), address.as_str()])
    }

    /// The email's key.
    pub fn email(email: &Email) -> Self {
        Self::digest("email", &[email.as_str()])
    }

    /// The address's key.
    pub fn address(address: &ClientAddress) -> Self {
        Self::digest("address", &[address.as_str()])
    }

    fn digest(kind: &str, parts: &[&str]) -> Self {
        let mut hash = Sha256::new();
        for part in parts {
            // Length-prefixed, so no two different part lists hash the same bytes.
            hash.update(part.len().to_be_bytes());
            hash.update(part.as_bytes());
        }
        Self(format!("{kind}#{}", hex::encode(hash.finalize())))
    }

    /// The key as stored: the kind, `#` and the hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CounterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self
            .0
            .get(..self.0.find('#').unwrap_or(0) + 9)
            .unwrap_or("");
        write!(f, "CounterKey({short}…)")
    }
}

/// Which limit refused a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`LoginLimit::PER_PAIR`].
    Pair,
    /// [`LoginLimit::PER_EMAIL`].
    Email,
    /// [`LoginLimit::PER_ADDRESS_FAILURES`].
    Address,
}

impl Limit {
    /// The name in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pair => "pair",
            Self::Email => "email",
            Self::Address => "address",
        }
    }
}

/// The counters of one login attempt.
#[derive(Debug, Clone)]
pub struct LoginCounters {
    /// The (email, address) pair.
    pub pair: CounterKey,
    /// The email.
    pub email: CounterKey,
    /// The address.
    pub address: CounterKey,
    /// The window the attempt falls in.
    pub window: Window,
}

impl LoginCounters {
    /// The counters of a login for `email` from `address` at `now`.
    pub fn new(email: &Email, address: &ClientAddress, now: DateTime<Utc>) -> Self {
        Self {
            pair: CounterKey::pair(email, address),
            email: CounterKey::email(email),
            address: CounterKey::address(address),
            window: Window::at(now),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    #[test]
    fn addresses_come_from_the_source_ip_and_ipv6_counts_per_64() {
        let v4 = ClientAddress::from_source_ip(Some("203.0.113.7"));
        assert_eq!(v4.as_str(), "203.0.113.7");
        let a = ClientAddress::from_source_ip(Some("2001:db8:1:2:aaaa::1"));
        let b = ClientAddress::from_source_ip(Some("2001:db8:1:2:ffff:1:2:3"));
        let c = ClientAddress::from_source_ip(Some("2001:db8:1:3::1"));
        assert_eq!(a, b, "one /64");
        assert_ne!(a, c);
        assert_eq!(a.as_str(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientAddress::from_source_ip(Some("::ffff:203.0.113.7")),
            v4,
            "an IPv4-mapped address is the IPv4 address"
        );
        for junk in [None, Some(""), Some("not an ip"), Some("1.2.3.4, 5.6.7.8")] {
            assert_eq!(ClientAddress::from_source_ip(junk).as_str(), "unknown");
        }
    }

    #[test]
    fn keys_are_digests_of_the_normalised_email_and_the_address() {
        let here = ClientAddress::from_source_ip(Some("203.0.113.7"));
        let there = ClientAddress::from_source_ip(Some("198.51.100.1"));
        let ada = email(" Ada@Example.com ");
        assert_eq!(
            CounterKey::pair(&ada, &here),
            CounterKey::pair(&email("ada@example.com"), &here)
        );
        assert_ne!(
            CounterKey::pair(&ada, &here),
            CounterKey::pair(&ada, &there)
        );
        assert_ne!(
            CounterKey::pair(&ada, &here),
            CounterKey::pair(&email("eve@example.com"), &here)
        );
        assert_eq!(
            CounterKey::email(&ada),
            CounterKey::email(&email("ada@example.com"))
        );
        assert_ne!(CounterKey::address(&here), CounterKey::address(&there));
        for (key, kind) in [
            (CounterKey::pair(&ada, &here), "pair#"),
            (CounterKey::email(&ada), "email#"),
            (CounterKey::address(&here), "address#"),
        ] {
            assert!(key.as_str().starts_with(kind));
            assert_eq!(key.as_str().len(), kind.len() + 64);
            assert!(!key.as_str().contains("ada") && !key.as_str().contains("203."));
            assert!(!format!("{key:?}").contains("ada"));
        }
    }

    #[test]
    fn windows_are_fixed_and_retry_after_runs_to_their_end() {
        let start = Utc.timestamp_opt(900 * 1_000_000, 0).single().unwrap();
        let window = Window::at(start);
        assert_eq!(window.ends_at(), start + chrono::Duration::seconds(900));
        assert_eq!(window.retry_after(start), Duration::from_secs(900));
        let late = start + chrono::Duration::seconds(899);
        assert_eq!(Window::at(late), window);
        assert_eq!(window.retry_after(late), Duration::from_secs(1));
        assert_eq!(
            window.retry_after(start + chrono::Duration::seconds(2000)),
            Duration::from_secs(1),
            "never 0"
        );
        let next = Window::at(start + chrono::Duration::seconds(900));
        assert_eq!(next.number(), window.number() + 1);
    }
}
