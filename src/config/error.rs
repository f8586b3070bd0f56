//! The configuration layer's error type.

/// Why a configuration was rejected. Every message names the property key involved, so a person
/// can find the line to fix in their properties or builder call.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A property key that kafka-once does not know (keys are case-sensitive).
    #[error("unknown configuration key {key:?}{}", did_you_mean(*.suggestion))]
    UnknownKey {
        /// The key as given.
        key: String,
        /// The known key closest to it, if one is within edit distance 2.
        suggestion: Option<&'static str>,
    },
    /// A value that does not parse as what its key expects.
    #[error("invalid value {value:?} for {key}: expected {expected}")]
    InvalidValue {
        /// The key as given (a librdkafka alias stays spelled as the user wrote it).
        key: String,
        /// The rejected text (for a list, the offending item).
        value: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// Settings that are each well-formed but contradict each other or a protocol limit.
    #[error("invalid configuration: {reason}")]
    Invalid {
        /// The property keys involved, so callers can tell conflicts apart without parsing text.
        keys: &'static [&'static str],
        /// What is wrong and how to fix it; names every key in `keys`.
        reason: String,
    },
}

fn did_you_mean(suggestion: Option<&'static str>) -> String {
    match suggestion {
        Some(key) => format!(" (did you mean {key:?}?)"),
        None => String::new(),
    }
}

impl ConfigError {
    pub(super) fn invalid(keys: &'static [&'static str], reason: impl Into<String>) -> Self {
        Self::Invalid {
            keys,
            reason: reason.into(),
        }
    }

    pub(super) fn invalid_value(key: &str, value: &str, expected: &'static str) -> Self {
        Self::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            expected,
        }
    }
}
