//! `host:port` addresses of brokers.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use super::ParseValueError;

/// A broker's `host:port`, as given in `bootstrap.servers`.
///
/// Parses `localhost:9092`, `10.0.0.1:9092`, `[::1]:9092` (IPv6 in brackets) and, as the Java
/// client and librdkafka do, an optional `PLAINTEXT://` prefix. Displays as `host:port`, with an
/// IPv6 host in brackets, so the text parses back to the same address.
///
/// ```rust
/// use kafka_once::config::BrokerAddress;
///
/// let addr: BrokerAddress = "[::1]:9092".parse().unwrap();
/// assert_eq!((addr.host.as_str(), addr.port), ("::1", 9092));
/// assert_eq!(addr.to_string(), "[::1]:9092");
/// assert!("localhost".parse::<BrokerAddress>().is_err()); // no port
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BrokerAddress {
    /// A DNS name or an IP address; an IPv6 address is stored without brackets.
    pub host: String,
    /// The TCP port, never 0 once validated.
    pub port: u16,
}

impl BrokerAddress {
    /// An address from its parts (checked by [`ClientConfig::validate`] when used for bootstrap).
    ///
    /// [`ClientConfig::validate`]: super::ClientConfig::validate
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// Why this address cannot be connected to, if it cannot.
    pub(super) fn problem(&self) -> Option<&'static str> {
        if self.port == 0 {
            return Some(EXPECTED_PORT);
        }
        if self.host.contains(':') {
            return match self.host.parse::<Ipv6Addr>() {
                Ok(_) => None,
                Err(_) => Some(EXPECTED_HOST),
            };
        }
        let host_ok = !self.host.is_empty()
            && self
                .host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        (!host_ok).then_some(EXPECTED_HOST)
    }
}

const EXPECTED_FORM: &str = "host:port, e.g. localhost:9092";
const EXPECTED_PORT: &str = "host:port with a port from 1 to 65535";
const EXPECTED_HOST: &str =
    "host:port where host is a DNS name or an IP address (IPv6 in brackets, e.g. [::1]:9092)";
const EXPECTED_BRACKETS: &str = "host:port with an IPv6 host in brackets, e.g. [::1]:9092";
const EXPECTED_PLAINTEXT: &str = "host:port or PLAINTEXT://host:port \
    (kafka-once speaks plaintext only; SSL and SASL listeners are not supported yet)";

impl FromStr for BrokerAddress {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |expected| ParseValueError::new(s, expected);
        let mut rest = s.trim();
        if let Some((scheme, after)) = rest.split_once("://") {
            if !scheme.eq_ignore_ascii_case("plaintext") {
                return Err(err(EXPECTED_PLAINTEXT));
            }
            rest = after;
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| err(EXPECTED_HOST))?;
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(err(EXPECTED_HOST));
            }
            let port = after.strip_prefix(':').ok_or_else(|| err(EXPECTED_FORM))?;
            (host, port)
        } else {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| err(EXPECTED_FORM))?;
            if host.contains(':') {
                return Err(err(EXPECTED_BRACKETS));
            }
            (host, port)
        };
        // `u16::from_str` accepts a leading `+`; a port is digits only.
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(EXPECTED_PORT));
        }
        let port = port.parse::<u16>().map_err(|_| err(EXPECTED_PORT))?;
        let addr = Self::new(host, port);
        match addr.problem() {
            Some(expected) => Err(err(expected)),
            None => Ok(addr),
        }
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}
