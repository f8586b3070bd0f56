//! API version negotiation: per API, the highest version both sides support.

use std::collections::HashMap;

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::{Request, VersionRange};

use super::{ProtocolError, api_key};

/// The versions of each API this client is willing to speak.
///
/// By default the full range the message types can encode; a few APIs are capped where a newer
/// version changes semantics that the calling layer does not handle yet.
pub fn client_range(api: ApiKey) -> VersionRange {
    let all = api.valid_versions();
    let cap = match api {
        // ApiVersions v3 is the first flexible version and what modern clients send first.
        ApiKey::ApiVersions => 3,
        _ => all.max,
    };
    VersionRange {
        min: all.min,
        max: all.max.min(cap),
    }
}

/// The API versions one broker advertised in its ApiVersions response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersionTable {
    ranges: HashMap<i16, (i16, i16)>,
}

impl ApiVersionTable {
    /// Builds the table from a broker's ApiVersions response.
    pub fn from_response(response: &ApiVersionsResponse) -> Self {
        let ranges = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Self { ranges }
    }

    /// Builds a table from explicit `(api key, min, max)` triples (tests, fake brokers).
    pub fn from_ranges(ranges: impl IntoIterator<Item = (i16, i16, i16)>) -> Self {
        Self {
            ranges: ranges
                .into_iter()
                .map(|(k, min, max)| (k, (min, max)))
                .collect(),
        }
    }

    /// The broker's range for `api`, if it supports it.
    pub fn broker_range(&self, api: ApiKey) -> Option<VersionRange> {
        self.ranges
            .get(&(api as i16))
            .map(|&(min, max)| VersionRange { min, max })
    }

    /// The highest version of `api` that both this client and the broker support.
    pub fn negotiate(&self, api: ApiKey) -> Result<i16, ProtocolError> {
        self.negotiate_within(api, client_range(api))
    }

    /// Like [`negotiate`](Self::negotiate), for a request type.
    pub fn negotiate_for<R: Request>(&self) -> Result<i16, ProtocolError> {
        self.negotiate(api_key::<R>())
    }

    /// The highest version of `api` within `client` that the broker also supports.
    pub fn negotiate_within(
        &self,
        api: ApiKey,
        client: VersionRange,
    ) -> Result<i16, ProtocolError> {
        let broker = self
            .broker_range(api)
            .ok_or(ProtocolError::UnsupportedApi { api })?;
        let common = broker.intersect(&client);
        if common.is_empty() {
            return Err(ProtocolError::NoCommonVersion {
                api,
                broker_min: broker.min,
                broker_max: broker.max,
                client_min: client.min,
                client_max: client.max,
            });
        }
        Ok(common.max)
    }

    /// Number of APIs the broker advertised.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the broker advertised no API at all.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_highest_common_version() {
        let t = ApiVersionTable::from_ranges([(ApiKey::Metadata as i16, 0, 9)]);
        assert_eq!(t.negotiate(ApiKey::Metadata).unwrap(), 9);
        let t = ApiVersionTable::from_ranges([(ApiKey::Metadata as i16, 0, 400)]);
        assert_eq!(
            t.negotiate(ApiKey::Metadata).unwrap(),
            ApiKey::Metadata.valid_versions().max
        );
    }

    #[test]
    fn no_common_version_names_the_api() {
        let t = ApiVersionTable::from_ranges([(ApiKey::Metadata as i16, 300, 400)]);
        let err = t.negotiate(ApiKey::Metadata).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::NoCommonVersion {
                api: ApiKey::Metadata,
                broker_min: 300,
                ..
            }
        ));
        assert!(err.to_string().contains("Metadata"), "{err}");
        assert!(matches!(
            t.negotiate(ApiKey::Fetch),
            Err(ProtocolError::UnsupportedApi { api: ApiKey::Fetch })
        ));
    }
}
