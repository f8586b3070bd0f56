//! The ecosystem's string keys: `from_properties` and `to_properties`.
//!
//! One table, [`PROPERTIES`], lists every accepted key with how to parse it into a field and, for
//! canonical keys, how to print the field back; both directions come from the same entry, so they
//! cannot drift apart. Keys are spelled as the Java client does; where librdkafka spells a setting
//! differently its key is accepted too, as an alias.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use super::{ClientConfig, ConfigError, ParseValueError};

impl ClientConfig {
    /// Builds a configuration from Java/librdkafka-style properties, then validates it.
    ///
    /// Accepts every key documented on [`ClientConfigBuilder`](super::ClientConfigBuilder)'s
    /// setters plus librdkafka aliases (`metadata.broker.list`, `fetch.wait.max.ms`,
    /// `fetch.message.max.bytes`, `queue.buffering.max.ms`, `compression.codec`,
    /// `request.required.acks`, `message.timeout.ms`, `message.send.max.retries`,
    /// `message.max.bytes`) and `security.protocol=plaintext`. Values are trimmed; booleans and
    /// names are case-insensitive; durations are whole milliseconds; lists are comma-separated.
    /// Keys not given keep their defaults; a key given twice takes its last value.
    ///
    /// ```rust
    /// use kafka_once::config::{AutoOffsetReset, ClientConfig, ConfigError};
    ///
    /// let config = ClientConfig::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("group.id", "dbos-kafka-group"),
    ///     ("auto.offset.reset", "earliest"),
    /// ])?;
    /// assert_eq!(config.consumer().group_id(), Some("dbos-kafka-group"));
    /// assert_eq!(config.consumer().auto_offset_reset(), AutoOffsetReset::Earliest);
    ///
    /// let typo = ClientConfig::from_properties([("bootstrap.server", "localhost:9092")]);
    /// assert!(matches!(
    ///     typo,
    ///     Err(ConfigError::UnknownKey { suggestion: Some("bootstrap.servers"), .. })
    /// ));
    /// # Ok::<(), ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::UnknownKey`] for a key not in the table (with the closest known key as a
    /// suggestion), [`ConfigError::InvalidValue`] for a value that does not parse, and whatever
    /// [`validate`](Self::validate) rejects.
    pub fn from_properties<I, K, V>(props: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = Self::defaults();
        for (key, value) in props {
            let key = key.as_ref();
            let property = PROPERTIES.iter().find(|p| p.key == key).ok_or_else(|| {
                ConfigError::UnknownKey {
                    key: key.to_owned(),
                    suggestion: closest_key(key),
                }
            })?;
            (property.apply)(&mut config, key, value.as_ref().trim())?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Every setting as a canonical key and its value; unset optional settings are left out.
    /// [`from_properties`](Self::from_properties) turns the list back into an equal
    /// configuration (durations are written in whole milliseconds, so a sub-millisecond part is
    /// dropped).
    pub fn to_properties(&self) -> Vec<(String, String)> {
        PROPERTIES
            .iter()
            .filter(|p| p.alias_of.is_none())
            .filter_map(|p| Some((p.key.to_owned(), (p.get)(self)?)))
            .collect()
    }
}

/// Parses a comma-separated list, skipping empty items as the Java client does.
pub(super) fn parse_list<T>(key: &str, value: &str) -> Result<Vec<T>, ConfigError>
where
    T: FromStr<Err = ParseValueError>,
{
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| item.parse().map_err(|e| from_parse(key, e)))
        .collect()
}

fn from_parse(key: &str, error: ParseValueError) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: error.value,
        expected: error.expected,
    }
}

/// One accepted key.
pub(super) struct Property {
    pub(super) key: &'static str,
    /// For a librdkafka alias, the canonical key it stands for.
    pub(super) alias_of: Option<&'static str>,
    /// Parses the (trimmed) value into the config; gets the key as the user spelled it.
    apply: fn(&mut ClientConfig, &str, &str) -> Result<(), ConfigError>,
    /// The value to print; `None` for an unset option, an alias, or a key with nothing stored.
    get: fn(&ClientConfig) -> Option<String>,
}

macro_rules! property {
    ($key:literal, $kind:ident, $($field:ident).+) => {
        Property {
            key: $key,
            alias_of: None,
            apply: |c, k, v| {
                c.$($field).+ = kind::$kind::parse(k, v)?;
                Ok(())
            },
            get: |c| kind::$kind::show(&c.$($field).+),
        }
    };
    ($key:literal alias of $canonical:literal, $kind:ident, $($field:ident).+) => {
        Property {
            key: $key,
            alias_of: Some($canonical),
            apply: |c, k, v| {
                c.$($field).+ = kind::$kind::parse(k, v)?;
                Ok(())
            },
            get: |_| None,
        }
    };
}

/// Every accepted key; canonical keys in the order `to_properties` prints them.
pub(super) static PROPERTIES: &[Property] = &[
    property!("bootstrap.servers", list, bootstrap_servers),
    property!("client.id", string, client_id),
    property!("request.timeout.ms", ms, request_timeout),
    property!(
        "socket.connection.setup.timeout.ms",
        long_ms,
        connect_timeout
    ),
    property!("reconnect.backoff.ms", long_ms, reconnect_backoff),
    property!("reconnect.backoff.max.ms", long_ms, reconnect_backoff_max),
    property!("retry.backoff.ms", long_ms, retry_backoff),
    property!("retry.backoff.max.ms", long_ms, retry_backoff_max),
    property!("retries", int, retries),
    property!("metadata.max.age.ms", long_ms, metadata_max_age),
    property!(
        "max.in.flight.requests.per.connection",
        count,
        max_in_flight
    ),
    property!(
        "receive.message.max.bytes",
        bytes,
        receive_message_max_bytes
    ),
    property!("socket.send.buffer.bytes", buffer, socket_send_buffer_bytes),
    property!(
        "socket.receive.buffer.bytes",
        buffer,
        socket_receive_buffer_bytes
    ),
    property!("connections.max.idle.ms", idle_ms, connections_max_idle),
    Property {
        key: "security.protocol",
        alias_of: None,
        apply: |_, k, v| {
            if v.eq_ignore_ascii_case("plaintext") {
                Ok(())
            } else {
                Err(ConfigError::invalid_value(
                    k,
                    v,
                    "PLAINTEXT (SSL and SASL are not supported yet)",
                ))
            }
        },
        get: |_| None,
    },
    // Group and consumer.
    property!("group.id", opt_string, consumer.group_id),
    property!("group.instance.id", opt_string, consumer.group_instance_id),
    property!("session.timeout.ms", ms, consumer.session_timeout),
    property!("heartbeat.interval.ms", ms, consumer.heartbeat_interval),
    property!("max.poll.interval.ms", ms, consumer.max_poll_interval),
    property!("auto.offset.reset", value, consumer.auto_offset_reset),
    property!("enable.auto.commit", boolean, consumer.enable_auto_commit),
    property!("auto.commit.interval.ms", ms, consumer.auto_commit_interval),
    property!("isolation.level", value, consumer.isolation_level),
    property!("fetch.min.bytes", int, consumer.fetch_min_bytes),
    property!("fetch.max.bytes", int, consumer.fetch_max_bytes),
    property!("fetch.max.wait.ms", ms, consumer.fetch_max_wait),
    property!(
        "max.partition.fetch.bytes",
        int,
        consumer.max_partition_fetch_bytes
    ),
    property!(
        "partition.assignment.strategy",
        list,
        consumer.partition_assignment_strategy
    ),
    property!("max.poll.records", count, consumer.max_poll_records),
    property!("check.crcs", boolean, consumer.check_crcs),
    // Producer.
    property!("acks", value, producer.acks),
    property!("enable.idempotence", boolean, producer.enable_idempotence),
    property!("linger.ms", long_ms, producer.linger),
    property!("batch.size", int, producer.batch_size),
    property!("compression.type", value, producer.compression_type),
    property!("buffer.memory", long, producer.buffer_memory),
    property!("delivery.timeout.ms", ms, producer.delivery_timeout),
    property!("max.request.size", int, producer.max_request_size),
    property!("transactional.id", opt_string, producer.transactional_id),
    property!(
        "partitioner.ignore.keys",
        boolean,
        producer.partitioner_ignore_keys
    ),
    property!("max.block.ms", long_ms, producer.max_block),
    // librdkafka's spellings of the same settings.
    property!("metadata.broker.list" alias of "bootstrap.servers", list, bootstrap_servers),
    property!("fetch.wait.max.ms" alias of "fetch.max.wait.ms", ms, consumer.fetch_max_wait),
    property!(
        "fetch.message.max.bytes" alias of "max.partition.fetch.bytes",
        int,
        consumer.max_partition_fetch_bytes
    ),
    property!("queue.buffering.max.ms" alias of "linger.ms", long_ms, producer.linger),
    property!("compression.codec" alias of "compression.type", value, producer.compression_type),
    property!("request.required.acks" alias of "acks", value, producer.acks),
    property!("message.timeout.ms" alias of "delivery.timeout.ms", ms, producer.delivery_timeout),
    property!("message.send.max.retries" alias of "retries", int, retries),
    property!("message.max.bytes" alias of "max.request.size", int, producer.max_request_size),
];

/// Value kinds: each parses a trimmed property value and prints a field back.
mod kind {
    use super::*;

    /// The Java client's `int`: 0 to `i32::MAX`.
    const INT_MAX: u64 = i32::MAX as u64;
    /// The Java client's `long`: 0 to `i64::MAX`.
    const LONG_MAX: u64 = i64::MAX as u64;

    fn number(
        key: &str,
        value: &str,
        max: u64,
        expected: &'static str,
    ) -> Result<u64, ConfigError> {
        // `u64::from_str` rejects `-`, overflow and non-digits alike; the message gives the range.
        match value.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(ConfigError::invalid_value(key, value, expected)),
        }
    }

    fn millis(d: &Duration) -> Option<String> {
        Some(d.as_millis().to_string())
    }

    pub(super) mod ms {
        use super::*;
        pub(crate) fn parse(key: &str, value: &str) -> Result<Duration, ConfigError> {
            const EXPECTED: &str = "whole milliseconds from 0 to 2147483647";
            number(key, value, INT_MAX, EXPECTED).map(Duration::from_millis)
        }
        pub(crate) fn show(d: &Duration) -> Option<String> {
            millis(d)
        }
    }

    pub(super) mod long_ms {
        use super::*;
        pub(crate) fn parse(key: &str, value: &str) -> Result<Duration, ConfigError> {
            const EXPECTED: &str = "whole milliseconds from 0 to 9223372036854775807";
            number(key, value, LONG_MAX, EXPECTED).map(Duration::from_millis)
        }
        pub(crate) fn show(d: &Duration) -> Option<String> {
            millis(d)
        }
    }

    /// `-1` for "never".
    pub(super) mod idle_ms {
        use super::*;
        pub(crate) fn parse(key: &str, value: &str) -> Result<Option<Duration>, ConfigError> {
            const EXPECTED: &str =
                "whole milliseconds from 0 to 9223372036854775807, or -1 to keep idle connections";
            if value == "-1" {
                return Ok(None);
            }
            number(key, value, LONG_MAX, EXPECTED).map(|n| Some(Duration::from_millis(n)))
        }
        pub(crate) fn show(d: &Option<Duration>) -> Option<String> {
            Some(
                d.as_ref()
                    .map_or_else(|| "-1".to_owned(), |d| d.as_millis().to_string()),
            )
        }
    }

    pub(super) mod int {
        use super::*;
        pub(crate) fn parse(key: &str, value: &str) -> Result<u32, ConfigError> {
            const EXPECTED: &str = "a whole number from 0 to 2147483647";
            // INT_MAX fits u32.
            number(key, value, INT_MAX, EXPECTED).map(|n| n as u32)
        }
        pub(crate) fn show(n: &u32) -> Option<String> {
            Some(n.to_string())
        }
    }

    pub(super) mod count {
        use super::*;
        pub(crate) fn parse(key: &str, value: &str) -> Result<usize, ConfigError> {
            const EXPECTED: &str = "a whole number from 1 to 2147483647";
            match number(key, value, INT_MAX, EXPECTED)? {
                0 => Err(ConfigError::invalid_value(key, value, EXPECTED)),
                n => {
                    usize::try_from(n).map_err(|_| ConfigError::invalid_value(key, value, EXPECTED))
                }
            }
        }
        pub(crate) fn show(n: &usize) -> Option<String> {
            Some(n.to_string())
        }
    }

    /// A local byte limit: 0 to `i32::MAX`, stored as `usize`.
    pub(super) mod bytes {
        use super::*;
        pub(crate) fn parse(key: &str, value: &str) -> Result<usize, ConfigError> {
            const EXPECTED: &str = "a whole number of bytes from 0 to 2147483647";
            let n = number(key, value, INT_MAX, EXPECTED)?;
            usize::try_from(n).map_err(|_| ConfigError::invalid_value(key, value, EXPECTED))
        }
        pub(crate) fn show(n: &usize) -> Option<String> {
            Some(n.to_string())
        }
    }

    pub(super) mod long {
        use super::*;
        pub(crate) fn parse(key: &str, value: &str) -> Result<u64, ConfigError> {
            const EXPECTED: &str = "a whole number from 0 to 9223372036854775807";
            number(key, value, LONG_MAX, EXPECTED)
        }
        pub(crate) fn show(n: &u64) -> Option<String> {
            Some(n.to_string())
        }
    }

    /// Socket buffer sizes: `-1` (Java) or `0` (librdkafka) for the OS default.
    pub(super) mod buffer {
        use super::*;
        pub(crate) fn parse(key: &str, value: &str) -> Result<Option<usize>, ConfigError> {
            const EXPECTED: &str = "bytes from 1 to 2147483647, or -1 for the OS default";
            if value == "-1" {
                return Ok(None);
            }
            match number(key, value, INT_MAX, EXPECTED)? {
                0 => Ok(None),
                n => usize::try_from(n)
                    .map(Some)
                    .map_err(|_| ConfigError::invalid_value(key, value, EXPECTED)),
            }
        }
        pub(crate) fn show(n: &Option<usize>) -> Option<String> {
            Some(n.map_or_else(|| "-1".to_owned(), |n| n.to_string()))
        }
    }

    pub(super) mod boolean {
        use super::*;
        pub(crate) fn parse(key: &str, value: &str) -> Result<bool, ConfigError> {
            if value.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if value.eq_ignore_ascii_case("false") {
                Ok(false)
            } else {
                Err(ConfigError::invalid_value(key, value, "true or false"))
            }
        }
        pub(crate) fn show(b: &bool) -> Option<String> {
            Some(b.to_string())
        }
    }

    pub(super) mod string {
        use super::*;
        pub(crate) fn parse(_key: &str, value: &str) -> Result<String, ConfigError> {
            Ok(value.to_owned())
        }
        pub(crate) fn show(s: &str) -> Option<String> {
            Some(s.to_owned())
        }
    }

    pub(super) mod opt_string {
        use super::*;
        pub(crate) fn parse(_key: &str, value: &str) -> Result<Option<String>, ConfigError> {
            // An empty value stays `Some("")` so that `validate` can say what to do instead.
            Ok(Some(value.to_owned()))
        }
        pub(crate) fn show(s: &Option<String>) -> Option<String> {
            s.clone()
        }
    }

    /// Enumerated values, through their `FromStr` and `Display`.
    pub(super) mod value {
        use super::*;
        pub(crate) fn parse<T>(key: &str, value: &str) -> Result<T, ConfigError>
        where
            T: FromStr<Err = ParseValueError>,
        {
            value.parse().map_err(|e| from_parse(key, e))
        }
        pub(crate) fn show<T: Display>(t: &T) -> Option<String> {
            Some(t.to_string())
        }
    }

    /// Comma-separated lists of `FromStr` items.
    pub(super) mod list {
        use super::*;
        pub(crate) fn parse<T>(key: &str, value: &str) -> Result<Vec<T>, ConfigError>
        where
            T: FromStr<Err = ParseValueError>,
        {
            parse_list(key, value)
        }
        pub(crate) fn show<T: Display>(items: &[T]) -> Option<String> {
            let items: Vec<String> = items.iter().map(T::to_string).collect();
            Some(items.join(","))
        }
    }
}

/// The known key closest to `key`, if it is within edit distance 2 (less for short keys, so
/// that `abc` does not suggest `acks`). Case is ignored, since keys are case-sensitive and a
/// wrongly cased key deserves a hint.
pub(super) fn closest_key(key: &str) -> Option<&'static str> {
    let limit = (key.chars().count() / 3).min(2);
    PROPERTIES
        .iter()
        .map(|p| (edit_distance(key, p.key, limit), p.key))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over ASCII-lowercased chars; `limit + 1` once it exceeds `limit`.
fn edit_distance(a: &str, b: &str, limit: usize) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Keys from users can be arbitrarily long; the length gap alone bounds the distance.
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()].min(limit + 1)
}
