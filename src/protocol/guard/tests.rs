use std::collections::BTreeMap;
use std::sync::LazyLock;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use proptest::collection::vec;
use proptest::prelude::*;

use super::schema::{self, Field, Kind, MESSAGES, Versions};
use super::*;

mod samples;

use samples::{VARIANTS, Variant};

/// The responses the guard must cover at every version.
const REQUIRED: [ApiKey; 25] = [
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::InitProducerId,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::TxnOffsetCommit,
    ApiKey::DescribeGroups,
    ApiKey::ListGroups,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::DescribeConfigs,
    ApiKey::CreatePartitions,
    ApiKey::DeleteRecords,
];

/// Every (API, version) `kafka-protocol` decodes, for the required APIs.
fn combos() -> impl Iterator<Item = (ApiKey, i16)> {
    REQUIRED.into_iter().flat_map(|api| {
        let range = api.valid_versions();
        (range.min..=range.max).map(move |v| (api, v))
    })
}

struct Sample {
    api: ApiKey,
    version: i16,
    variant: Variant,
    body: Bytes,
}

static SAMPLES: LazyLock<Vec<Sample>> = LazyLock::new(|| {
    combos()
        .flat_map(|(api, version)| {
            VARIANTS.map(|variant| Sample {
                api,
                version,
                variant,
                body: samples::encode(api, version, variant),
            })
        })
        .collect()
});

static COMBOS: LazyLock<Vec<(ApiKey, i16)>> = LazyLock::new(|| combos().collect());

fn flexible(api: ApiKey, version: i16) -> bool {
    schema::lookup(api).expect("covered").is_flexible(version)
}

/// A length or count prefix the walk went through.
#[derive(Debug)]
struct Prefix {
    start: usize,
    end: usize,
    path: FieldPath,
    array: bool,
    string: bool,
}

#[derive(Default)]
struct Prefixes(Vec<Prefix>);

impl Visit for Prefixes {
    fn length_prefix(&mut self, start: usize, end: usize, path: &PathStack, kind: &Kind) {
        self.0.push(Prefix {
            start,
            end,
            path: path.snapshot(),
            array: matches!(kind, Kind::Array(_)),
            string: matches!(kind, Kind::Str),
        });
    }
}

fn uvarint(mut value: u32) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

// ---- The table agrees with kafka-protocol ----

#[test]
fn every_required_api_is_covered_at_every_version() {
    for (api, version) in combos() {
        assert!(
            is_covered(api, version),
            "{api:?} v{version} is not covered"
        );
    }
    assert_eq!(MESSAGES.len(), REQUIRED.len());
}

#[test]
fn table_versions_match_kafka_protocol() {
    for m in MESSAGES {
        let range = m.api.valid_versions();
        assert_eq!(
            (m.versions.min, m.versions.max),
            (range.min, range.max),
            "{:?}",
            m.api
        );
        for v in range.min..=range.max {
            // A flexible response has header v1, except ApiVersions whose header is always v0.
            if m.api != ApiKey::ApiVersions {
                let header_flexible = m.api.response_header_version(v) >= 1;
                assert_eq!(m.is_flexible(v), header_flexible, "{:?} v{v}", m.api);
            }
        }
    }
    assert!(flexible(ApiKey::ApiVersions, 3) && !flexible(ApiKey::ApiVersions, 2));
}

/// Walks every struct reachable at `version`, calling `check` on each field present there.
fn for_each_field(
    fields: &'static [Field],
    version: i16,
    depth: usize,
    check: &mut dyn FnMut(&Field, usize),
) {
    for field in fields.iter().filter(|f| f.versions.contains(version)) {
        check(field, depth + 1);
        let mut kind = &field.kind;
        while let Kind::Array(element) = kind {
            kind = element;
        }
        if let Kind::Struct(inner) = kind {
            for_each_field(inner, version, depth + 1, check);
        }
    }
}

#[test]
fn table_is_well_formed() {
    for m in MESSAGES {
        for v in m.versions.min..=m.versions.max {
            let flexible = m.is_flexible(v);
            for_each_field(m.fields, v, 0, &mut |field, depth| {
                let what = format!("{:?} v{v} {}", m.api, field.name);
                assert!(depth < MAX_DEPTH, "{what}: nested too deep for FieldPath");
                if field.nullable != Versions::NONE {
                    assert!(
                        matches!(field.kind, Kind::Str | Kind::Bytes | Kind::Array(_)),
                        "{what}: nullable scalar"
                    );
                }
                if field.tag.is_some() {
                    assert!(
                        field.versions.min >= m.flexible_from,
                        "{what}: tagged before flexible"
                    );
                }
                if let Kind::Array(element) = &field.kind {
                    // The clamp to 1 in `walk_array` must never be what bounds a covered array.
                    assert!(
                        min_size(element, v, flexible) >= 1,
                        "{what}: element can be empty"
                    );
                }
            });
        }
        // Tags are unique within each struct.
        fn unique_tags(fields: &'static [Field]) {
            let mut seen: Vec<u32> = fields.iter().filter_map(|f| f.tag).collect();
            let n = seen.len();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), n);
            for f in fields {
                let mut kind = &f.kind;
                while let Kind::Array(element) = kind {
                    kind = element;
                }
                if let Kind::Struct(inner) = kind {
                    unique_tags(inner);
                }
            }
        }
        unique_tags(m.fields);
    }
}

// ---- Valid responses pass ----

#[test]
fn accepts_every_valid_sample_and_walks_it_exactly() {
    for s in SAMPLES.iter() {
        let what = format!("{:?} v{} {:?}", s.api, s.version, s.variant);
        // The sample itself is what kafka-protocol expects.
        assert_eq!(
            samples::decode(s.api, s.version, s.body.clone()),
            Ok(0),
            "{what}: sample does not decode"
        );
        assert!(
            check_response_body(s.api, s.version, &s.body).is_ok(),
            "{what}"
        );
        // The walk ends exactly where the body does, so the table matches the layout.
        let walked = walk_body(s.api, s.version, &s.body, &mut ());
        assert_eq!(walked.unwrap(), Some(s.body.len()), "{what}");
    }
    assert_eq!(SAMPLES.len(), combos().count() * VARIANTS.len());
}

// ---- Corrupt lengths fail with the right error ----

#[test]
fn rejects_every_array_count_and_length_set_huge() {
    let (mut arrays, mut lengths) = (0, 0);
    for s in SAMPLES.iter() {
        let mut prefixes = Prefixes::default();
        walk_body(s.api, s.version, &s.body, &mut prefixes).unwrap();
        let flexible = flexible(s.api, s.version);
        for p in prefixes.0 {
            let what = format!(
                "{:?} v{} {:?} {} at {}",
                s.api, s.version, s.variant, p.path, p.start
            );
            let huge = match (flexible, p.string) {
                // 0x7fffffff elements or bytes, as length + 1.
                (true, _) => uvarint(0x8000_0000),
                (false, true) => i16::MAX.to_be_bytes().to_vec(),
                (false, false) => i32::MAX.to_be_bytes().to_vec(),
            };
            let mut body = s.body[..p.start].to_vec();
            body.extend_from_slice(&huge);
            body.extend_from_slice(&s.body[p.end..]);
            let err = check_response_body(s.api, s.version, &body).expect_err(&what);
            if p.array {
                arrays += 1;
                assert!(
                    matches!(
                        err,
                        GuardError::ArrayTooLong {
                            count: 0x7fff_ffff,
                            ..
                        }
                    ),
                    "{what}: {err}"
                );
            } else {
                lengths += 1;
                assert!(
                    matches!(err, GuardError::LengthTooLong { .. }),
                    "{what}: {err}"
                );
            }
            assert_eq!(err.field(), &p.path, "{what}");
        }
    }
    // Every sample has nested arrays; make sure the loop really ran over them.
    assert!(
        arrays > 1_000 && lengths > 1_000,
        "{arrays} arrays, {lengths} lengths"
    );
}

#[test]
fn metadata_broker_count_of_i32_max_is_rejected() {
    let body = 0x7fff_ffff_i32.to_be_bytes();
    let err = check_response_body(ApiKey::Metadata, 1, &body).unwrap_err();
    assert!(matches!(
        err,
        GuardError::ArrayTooLong {
            count: 0x7fff_ffff,
            min_element_size: 12,
            remaining: 0,
            ..
        }
    ));
    assert_eq!(err.field().segments(), ["brokers"]);
}

#[test]
fn error_message_names_the_field_path() {
    let mut body = Vec::new();
    body.extend(0_i32.to_be_bytes()); // brokers: []
    body.extend(1_i32.to_be_bytes()); // controller_id
    body.extend(1_i32.to_be_bytes()); // topics: [
    body.extend(0_i16.to_be_bytes()); //   error_code
    body.extend(1_i16.to_be_bytes()); //   name
    body.push(b't');
    body.push(0); //   is_internal
    body.extend(1_i32.to_be_bytes()); //   partitions: [
    body.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 1]); // error_code, partition_index, leader_id
    body.extend(0x7fff_ffff_i32.to_be_bytes()); // replica_nodes
    body.extend([0, 0, 0, 0]);
    let err = check_response_body(ApiKey::Metadata, 1, &body).unwrap_err();
    assert_eq!(
        err.to_string(),
        "topics.partitions.replica_nodes: array of 2147483647 elements cannot fit in the 4 bytes left (at least 4 bytes each)"
    );
}

#[test]
fn known_tagged_array_is_walked_in_place_even_when_its_size_lies() {
    // The decoder ignores the size of a known tagged field and decodes the value in place, so a
    // size of 0 must not let the huge count behind it through.
    let mut body = vec![0; 10]; // throttle_time_ms, error_code, session_id
    body.push(1); // responses: []
    body.extend([1, 0, 0]); // one tagged field: tag 0 (node_endpoints), size 0
    body.extend(uvarint(u32::MAX)); // node_endpoints: u32::MAX - 1 elements
    body.extend([0; 8]);
    let err = check_response_body(ApiKey::Fetch, 16, &body).unwrap_err();
    assert!(
        matches!(
            err,
            GuardError::ArrayTooLong {
                count: 0xffff_fffe,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.field().to_string(), "node_endpoints");
}

#[test]
fn unknown_tagged_field_longer_than_the_body_is_rejected() {
    let mut body = vec![0; 6]; // throttle_time_ms, error_code
    body.extend([1, 5, 100]); // one tagged field: tag 5, size 100
    body.extend([1, 2, 3]);
    let err = check_response_body(ApiKey::Heartbeat, 4, &body).unwrap_err();
    assert!(
        matches!(
            err,
            GuardError::LengthTooLong {
                len: 100,
                remaining: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.field().to_string(), "_tagged_fields");
}

#[test]
fn known_tag_outside_its_versions_is_rejected_like_the_decoder_does() {
    let mut body = vec![1]; // responses: []
    body.extend(0_i32.to_be_bytes()); // throttle_time_ms
    body.extend([1, 0, 1, 1]); // one tagged field: tag 0 (node_endpoints, v10+), size 1, []
    let err = check_response_body(ApiKey::Produce, 9, &body).unwrap_err();
    assert!(
        matches!(err, GuardError::UnexpectedTag { tag: 0, .. }),
        "{err}"
    );
    assert_eq!(err.field().to_string(), "node_endpoints");
    assert!(samples::decode(ApiKey::Produce, 9, Bytes::from(body)).is_err());
}

#[test]
fn null_where_the_version_forbids_it_is_rejected() {
    let mut body = Vec::new();
    body.extend(1_i32.to_be_bytes()); // brokers: [
    body.extend(1_i32.to_be_bytes()); //   node_id
    body.extend((-1_i16).to_be_bytes()); //   host: null
    body.extend([0; 16]);
    let err = check_response_body(ApiKey::Metadata, 1, &body).unwrap_err();
    assert!(matches!(err, GuardError::UnexpectedNull { .. }), "{err}");
    assert_eq!(err.field().to_string(), "brokers.host");
}

#[test]
fn negative_count_is_rejected() {
    let err = check_response_body(ApiKey::Metadata, 0, &(-2_i32).to_be_bytes()).unwrap_err();
    assert!(
        matches!(err, GuardError::NegativeLength { len: -2, .. }),
        "{err}"
    );
}

#[test]
fn truncated_body_is_rejected() {
    let mut body = 1_i32.to_be_bytes().to_vec(); // brokers: [
    body.extend(1_i32.to_be_bytes()); //   node_id
    body.extend(2_i16.to_be_bytes()); //   host
    body.extend(b"ab");
    body.extend(9092_i32.to_be_bytes()); //   port
    body.push(0); //   half a rack length
    let err = check_response_body(ApiKey::Metadata, 1, &body).unwrap_err();
    assert!(matches!(err, GuardError::Truncated { .. }), "{err}");
    assert_eq!(err.field().to_string(), "brokers.rack");
    let err = check_response_body(ApiKey::Heartbeat, 0, &[0]).unwrap_err();
    assert!(matches!(err, GuardError::Truncated { .. }), "{err}");
    assert_eq!(err.field().to_string(), "error_code");
}

#[test]
fn uncovered_responses_pass_unchecked() {
    assert!(!is_covered(ApiKey::DescribeAcls, 1));
    assert!(check_response_body(ApiKey::DescribeAcls, 1, &[0xff; 3]).is_ok());
    // Versions kafka-protocol cannot decode are the decoder's to reject.
    assert!(!is_covered(ApiKey::Metadata, 14));
    assert!(check_response_body(ApiKey::Metadata, 14, &[0x7f, 0xff, 0xff, 0xff]).is_ok());
}

#[test]
fn trailing_bytes_are_left_to_the_decoder() {
    let mut body = samples::encode(ApiKey::Heartbeat, 0, Variant::Full).to_vec();
    body.push(0);
    assert!(check_response_body(ApiKey::Heartbeat, 0, &body).is_ok());
}

// ---- Fuzz seeds ----

/// The `response` fuzz target's seeds: for every covered API at every version the client may
/// negotiate, the API key and version bytes the target reads first, then a response frame (header
/// and the full sample body) as `protocol::decode_response` takes it.
#[test]
fn response_fuzz_seeds_are_current() {
    let mut files = BTreeMap::new();
    for api in REQUIRED {
        let range = crate::protocol::versions::client_range(api);
        for version in range.min..=range.max {
            let mut seed = BytesMut::new();
            seed.put_u8(api as i16 as u8);
            seed.put_u8(version as u8);
            ResponseHeader::default()
                .with_correlation_id(7)
                .encode(&mut seed, api.response_header_version(version))
                .unwrap();
            seed.put_slice(&samples::encode(api, version, Variant::Full));
            files.insert(format!("{api:?}-v{version}.bin"), seed.to_vec());
        }
    }
    crate::fuzz_seeds::check_or_write("response", files);
}

// ---- Arbitrary input ----

const CASES_PER_API: u32 = 256;

/// Checks `body`; when the guard passes it, decodes it for real (which must not abort) and, if
/// that succeeds too, checks both read the same number of bytes.
fn check_then_decode(api: ApiKey, version: i16, body: &[u8]) -> Result<(), TestCaseError> {
    let walked = walk_body(api, version, body, &mut ());
    if let Ok(Some(consumed)) = walked
        && let Ok(left) = samples::decode(api, version, Bytes::copy_from_slice(body))
    {
        prop_assert_eq!(
            consumed,
            body.len() - left,
            "{:?} v{} walk and decode disagree",
            api,
            version
        );
    }
    Ok(())
}

/// One byte-level edit of a sample.
#[derive(Debug, Clone)]
enum Edit {
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn apply(edit: &Edit, body: &mut Vec<u8>) {
    match edit {
        Edit::Set(at, byte) if !body.is_empty() => {
            let i = at.index(body.len());
            body[i] = *byte;
        }
        Edit::Insert(at, byte) => body.insert(at.index(body.len() + 1), *byte),
        Edit::Remove(at) if !body.is_empty() => {
            body.remove(at.index(body.len()));
        }
        Edit::Truncate(at) => body.truncate(at.index(body.len() + 1)),
        _ => {}
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Set(at, b)),
        2 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Insert(at, b)),
        1 => any::<prop::sample::Index>().prop_map(Edit::Remove),
        1 => any::<prop::sample::Index>().prop_map(Edit::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES_PER_API * REQUIRED.len() as u32))]

    #[test]
    fn arbitrary_bytes_never_panic_or_reach_an_unbounded_decode(
        combo in any::<prop::sample::Index>(),
        body in vec(any::<u8>(), 0..256),
    ) {
        let (api, version) = COMBOS[combo.index(COMBOS.len())];
        check_then_decode(api, version, &body)?;
    }

    #[test]
    fn edited_samples_never_panic_or_reach_an_unbounded_decode(
        sample in any::<prop::sample::Index>(),
        edits in vec(edit(), 1..4),
    ) {
        let s = &SAMPLES[sample.index(SAMPLES.len())];
        let mut body = s.body.to_vec();
        for e in &edits {
            apply(e, &mut body);
        }
        check_then_decode(s.api, s.version, &body)?;
    }

    #[test]
    fn varints_are_read_like_kafka_protocol_reads_them(tail in vec(any::<u8>(), 0..12)) {
        // HeartbeatResponse v4 ends in a tagged-field section: all varints.
        let mut body = vec![0; 6];
        body.extend(&tail);
        let walked = walk_body(ApiKey::Heartbeat, 4, &body, &mut ());
        let decoded = samples::decode(ApiKey::Heartbeat, 4, Bytes::from(body.clone()));
        match (walked, decoded) {
            (Ok(Some(consumed)), Ok(left)) => prop_assert_eq!(consumed, body.len() - left),
            (Err(_), Err(_)) => {}
            (walked, decoded) => prop_assert!(false, "walk {:?}, decode {:?}", walked, decoded),
        }
    }
}
