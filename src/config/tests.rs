//! Tests of the configuration module.

use std::time::Duration;

use proptest::prelude::*;

use super::properties::{PROPERTIES, closest_key};
use super::*;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn base() -> ClientConfigBuilder {
    ClientConfig::builder().bootstrap_servers(["localhost:9092"])
}

/// The keys of an `Invalid` error, or a panic naming the unexpected result.
fn conflict(result: Result<ClientConfig, ConfigError>) -> &'static [&'static str] {
    match result {
        Err(ConfigError::Invalid { keys, reason }) => {
            for key in keys {
                assert!(reason.contains(key), "{reason:?} does not name {key}");
            }
            keys
        }
        other => panic!("expected ConfigError::Invalid, got {other:?}"),
    }
}

/// The key and value of an `InvalidValue` error, checking the message names the key.
fn bad_value(result: Result<ClientConfig, ConfigError>) -> (String, String) {
    match result {
        Err(e @ ConfigError::InvalidValue { .. }) => {
            let message = e.to_string();
            let ConfigError::InvalidValue {
                key,
                value,
                expected,
            } = e
            else {
                unreachable!()
            };
            assert!(message.contains(&key), "{message:?} does not name {key}");
            assert!(message.contains(expected), "{message:?}");
            (key, value)
        }
        other => panic!("expected ConfigError::InvalidValue, got {other:?}"),
    }
}

fn props(pairs: &[(&str, &str)]) -> Result<ClientConfig, ConfigError> {
    let mut all = vec![("bootstrap.servers", "localhost:9092")];
    all.extend_from_slice(pairs);
    ClientConfig::from_properties(all)
}

#[test]
fn defaults_match_the_java_client() {
    let c = ClientConfig::new("localhost:9092").unwrap();
    assert_eq!(
        c.bootstrap_servers(),
        [BrokerAddress::new("localhost", 9092)]
    );
    assert_eq!(c.client_id(), "kafka-once");
    assert_eq!(c.request_timeout(), 30 * SEC);
    assert_eq!(c.connect_timeout(), 10 * SEC);
    assert_eq!(c.reconnect_backoff(), 50 * MS);
    assert_eq!(c.reconnect_backoff_max(), SEC);
    assert_eq!(c.retry_backoff(), 100 * MS);
    assert_eq!(c.retry_backoff_max(), SEC);
    assert_eq!(c.retries(), i32::MAX as u32);
    assert_eq!(c.metadata_max_age(), 300 * SEC);
    assert_eq!(c.max_in_flight(), 5);
    assert_eq!(c.receive_message_max_bytes(), 104_858_112);
    assert_eq!(c.socket_send_buffer_bytes(), None);
    assert_eq!(c.socket_receive_buffer_bytes(), None);
    assert_eq!(c.connections_max_idle(), Some(540 * SEC));

    let g = c.consumer();
    assert_eq!(g.group_id(), None);
    assert_eq!(g.group_instance_id(), None);
    assert_eq!(g.session_timeout(), 45 * SEC);
    assert_eq!(g.heartbeat_interval(), 3 * SEC);
    assert_eq!(g.max_poll_interval(), 300 * SEC);
    assert_eq!(g.auto_offset_reset(), AutoOffsetReset::Latest);
    assert!(g.enable_auto_commit());
    assert_eq!(g.auto_commit_interval(), 5 * SEC);
    assert_eq!(g.isolation_level(), IsolationLevel::ReadUncommitted);
    assert_eq!(g.fetch_min_bytes(), 1);
    assert_eq!(g.fetch_max_bytes(), 52_428_800);
    assert_eq!(g.fetch_max_wait(), 500 * MS);
    assert_eq!(g.max_partition_fetch_bytes(), 1_048_576);
    assert_eq!(
        g.partition_assignment_strategy(),
        [
            AssignmentStrategy::Range,
            AssignmentStrategy::CooperativeSticky
        ]
    );
    assert_eq!(g.max_poll_records(), 500);
    assert!(g.check_crcs());

    let p = c.producer();
    assert_eq!(p.acks(), Acks::All);
    assert!(p.enable_idempotence());
    assert_eq!(p.linger(), 5 * MS);
    assert_eq!(p.batch_size(), 16_384);
    assert_eq!(p.compression_type(), CompressionType::None);
    assert_eq!(p.buffer_memory(), 33_554_432);
    assert_eq!(p.delivery_timeout(), 120 * SEC);
    assert_eq!(p.max_request_size(), 1_048_576);
    assert_eq!(p.transactional_id(), None);
    assert!(!p.partitioner_ignore_keys());
    assert_eq!(p.max_block(), 60 * SEC);

    // The same defaults whichever way the config is made.
    assert_eq!(base().build().unwrap(), c);
    assert_eq!(
        ClientConfig::from_properties([("bootstrap.servers", "localhost:9092")]).unwrap(),
        c
    );
}

/// A config with every setting away from its default.
fn everything_changed() -> ClientConfig {
    ClientConfig::builder()
        .bootstrap_servers(["b1:9092,b2:9093", "[::1]:9094"])
        .client_id("x")
        .request_timeout(20 * SEC)
        .connect_timeout(3 * SEC)
        .reconnect_backoff(10 * MS)
        .reconnect_backoff_max(2 * SEC)
        .retry_backoff(20 * MS)
        .retry_backoff_max(3 * SEC)
        .retries(7)
        .metadata_max_age(60 * SEC)
        .max_in_flight(3)
        .receive_message_max_bytes(20_000_000)
        .socket_send_buffer_bytes(Some(1 << 20))
        .socket_receive_buffer_bytes(Some(1 << 19))
        .connections_max_idle(None)
        .group_id("g")
        .group_instance_id("i-1")
        .session_timeout(30 * SEC)
        .heartbeat_interval(10 * SEC)
        .max_poll_interval(60 * SEC)
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .enable_auto_commit(false)
        .auto_commit_interval(SEC)
        .isolation_level(IsolationLevel::ReadCommitted)
        .fetch_min_bytes(1024)
        .fetch_max_bytes(10_000_000)
        .fetch_max_wait(100 * MS)
        .max_partition_fetch_bytes(2_000_000)
        .partition_assignment_strategy(vec![AssignmentStrategy::RoundRobin])
        .max_poll_records(10)
        .check_crcs(false)
        .acks(Acks::All)
        .enable_idempotence(true)
        .linger(20 * MS)
        .batch_size(65_536)
        .compression_type(CompressionType::Zstd)
        .buffer_memory(1 << 26)
        .delivery_timeout(90 * SEC)
        .max_request_size(4_000_000)
        .transactional_id("tx")
        .partitioner_ignore_keys(true)
        .max_block(5 * SEC)
        .build()
        .unwrap()
}

#[test]
fn builder_sets_every_field() {
    let c = everything_changed();
    assert_eq!(
        c.bootstrap_servers(),
        [
            BrokerAddress::new("b1", 9092),
            BrokerAddress::new("b2", 9093),
            BrokerAddress::new("::1", 9094)
        ]
    );
    assert_eq!(c.client_id(), "x");
    assert_eq!(c.request_timeout(), 20 * SEC);
    assert_eq!(c.retries(), 7);
    assert_eq!(c.max_in_flight(), 3);
    assert_eq!(c.socket_send_buffer_bytes(), Some(1 << 20));
    assert_eq!(c.connections_max_idle(), None);
    assert_eq!(c.consumer().group_id(), Some("g"));
    assert_eq!(c.consumer().group_instance_id(), Some("i-1"));
    assert_eq!(
        c.consumer().isolation_level(),
        IsolationLevel::ReadCommitted
    );
    assert_eq!(
        c.consumer().partition_assignment_strategy(),
        [AssignmentStrategy::RoundRobin]
    );
    assert!(!c.consumer().check_crcs());
    assert_eq!(c.producer().compression_type(), CompressionType::Zstd);
    assert_eq!(c.producer().transactional_id(), Some("tx"));
    assert!(c.producer().partitioner_ignore_keys());
    assert_eq!(c.producer().max_block(), 5 * SEC);

    // to_builder keeps everything and changes only what is set.
    let d = c.to_builder().client_id("y").build().unwrap();
    assert_eq!(d.client_id(), "y");
    assert_eq!(d.to_builder().client_id("x").build().unwrap(), c);
}

#[test]
fn builder_reports_a_bad_bootstrap_address_at_build() {
    let (key, value) = bad_value(
        ClientConfig::builder()
            .bootstrap_servers(["localhost"])
            .build(),
    );
    assert_eq!(
        (key.as_str(), value.as_str()),
        ("bootstrap.servers", "localhost")
    );
    let (_, value) = bad_value(ClientConfig::new("ok:1, nope:port"));
    assert_eq!(value, "nope:port");
    // Parsed addresses are checked by validate.
    let keys = conflict(
        ClientConfig::builder()
            .bootstrap_addresses([BrokerAddress::new("h", 0)])
            .build(),
    );
    assert_eq!(keys, ["bootstrap.servers"]);
}

#[test]
fn dbos_style_properties() {
    let c = ClientConfig::from_properties([
        ("bootstrap.servers", "localhost:9092"),
        ("group.id", "dbos-kafka-group"),
        ("auto.offset.reset", "earliest"),
    ])
    .unwrap();
    assert_eq!(
        c.bootstrap_servers(),
        [BrokerAddress::new("localhost", 9092)]
    );
    assert_eq!(c.consumer().group_id(), Some("dbos-kafka-group"));
    assert_eq!(c.consumer().auto_offset_reset(), AutoOffsetReset::Earliest);
    // Owned strings work as well as literals.
    let owned: Vec<(String, String)> = vec![("bootstrap.servers".into(), "h:1".into())];
    assert!(ClientConfig::from_properties(owned).is_ok());
}

#[test]
fn properties_parse_every_kind_of_value() {
    let c = props(&[
        ("client.id", "  spaced  "),
        ("enable.auto.commit", "FALSE"),
        ("check.crcs", "True"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "2000"),
        ("connections.max.idle.ms", "-1"),
        ("socket.send.buffer.bytes", "-1"),
        ("socket.receive.buffer.bytes", "65536"),
        ("isolation.level", "READ_COMMITTED"),
        ("acks", "-1"),
        ("compression.type", "lz4"),
        (
            "partition.assignment.strategy",
            "org.apache.kafka.clients.consumer.CooperativeStickyAssignor, roundrobin,",
        ),
        ("buffer.memory", "9223372036854775807"),
        ("security.protocol", "PLAINTEXT"),
    ])
    .unwrap();
    assert_eq!(c.client_id(), "spaced");
    assert!(!c.consumer().enable_auto_commit());
    assert!(c.consumer().check_crcs());
    assert_eq!(c.consumer().session_timeout(), 10 * SEC);
    assert_eq!(c.connections_max_idle(), None);
    assert_eq!(c.socket_send_buffer_bytes(), None);
    assert_eq!(c.socket_receive_buffer_bytes(), Some(65536));
    assert_eq!(
        c.consumer().isolation_level(),
        IsolationLevel::ReadCommitted
    );
    assert_eq!(c.producer().acks(), Acks::All);
    assert_eq!(c.producer().compression_type(), CompressionType::Lz4);
    assert_eq!(
        c.consumer().partition_assignment_strategy(),
        [
            AssignmentStrategy::CooperativeSticky,
            AssignmentStrategy::RoundRobin
        ]
    );
    assert_eq!(c.producer().buffer_memory(), i64::MAX as u64);
}

#[test]
fn auto_offset_reset_accepts_librdkafka_aliases() {
    for (text, want) in [
        ("earliest", AutoOffsetReset::Earliest),
        ("smallest", AutoOffsetReset::Earliest),
        ("beginning", AutoOffsetReset::Earliest),
        ("Latest", AutoOffsetReset::Latest),
        ("largest", AutoOffsetReset::Latest),
        ("end", AutoOffsetReset::Latest),
        ("none", AutoOffsetReset::None),
        ("error", AutoOffsetReset::None),
    ] {
        let c = props(&[("auto.offset.reset", text)]).unwrap();
        assert_eq!(c.consumer().auto_offset_reset(), want, "{text}");
    }
}

#[test]
fn librdkafka_aliases_set_the_same_fields() {
    let c = ClientConfig::from_properties([
        ("metadata.broker.list", "k1:9092,k2:9092"),
        ("fetch.wait.max.ms", "250"),
        ("fetch.message.max.bytes", "2048"),
        ("queue.buffering.max.ms", "0"),
        ("compression.codec", "snappy"),
        ("request.required.acks", "all"),
        ("message.timeout.ms", "300000"),
        ("message.send.max.retries", "3"),
        ("message.max.bytes", "1000000"),
    ])
    .unwrap();
    assert_eq!(c.bootstrap_servers().len(), 2);
    assert_eq!(c.consumer().fetch_max_wait(), 250 * MS);
    assert_eq!(c.consumer().max_partition_fetch_bytes(), 2048);
    assert_eq!(c.producer().linger(), Duration::ZERO);
    assert_eq!(c.producer().compression_type(), CompressionType::Snappy);
    assert_eq!(c.producer().delivery_timeout(), 300 * SEC);
    assert_eq!(c.retries(), 3);
    assert_eq!(c.producer().max_request_size(), 1_000_000);
    // to_properties writes the canonical keys only.
    let keys: Vec<String> = c.to_properties().into_iter().map(|(k, _)| k).collect();
    assert!(keys.iter().any(|k| k == "fetch.max.wait.ms"));
    assert!(!keys.iter().any(|k| k == "fetch.wait.max.ms"));
}

#[test]
fn unknown_key_names_it_and_suggests_the_closest() {
    let err = props(&[("bootstrap.server", "localhost:9092")]).unwrap_err();
    assert_eq!(
        err,
        ConfigError::UnknownKey {
            key: "bootstrap.server".into(),
            suggestion: Some("bootstrap.servers")
        }
    );
    assert_eq!(
        err.to_string(),
        r#"unknown configuration key "bootstrap.server" (did you mean "bootstrap.servers"?)"#
    );
    assert_eq!(closest_key("Group.Id"), Some("group.id"));
    assert_eq!(closest_key("retires"), Some("retries"));
    assert_eq!(closest_key("enable.auto.comit"), Some("enable.auto.commit"));
    assert_eq!(closest_key("abc"), None);
    assert_eq!(closest_key(""), None);
    assert_eq!(closest_key(&"x".repeat(10_000)), None);

    let err = props(&[("sasl.password", "secret")]).unwrap_err();
    assert_eq!(
        err,
        ConfigError::UnknownKey {
            key: "sasl.password".into(),
            suggestion: None
        }
    );
    // The value of an unknown key (maybe a secret) is not repeated.
    assert!(!err.to_string().contains("secret"));
}

#[test]
fn bad_values_name_their_key() {
    let cases: &[(&str, &str)] = &[
        ("enable.auto.commit", "yes"),
        ("check.crcs", "1"),
        ("enable.idempotence", ""),
        ("request.timeout.ms", "-5"),
        ("request.timeout.ms", "30s"),
        ("request.timeout.ms", "2147483648"),
        ("metadata.max.age.ms", "99999999999999999999"),
        ("session.timeout.ms", "1.5"),
        ("connections.max.idle.ms", "-2"),
        ("socket.send.buffer.bytes", "-3"),
        ("retries", "-1"),
        ("max.in.flight.requests.per.connection", "0"),
        ("max.poll.records", "+"),
        ("fetch.max.bytes", "3000000000"),
        ("receive.message.max.bytes", "lots"),
        ("auto.offset.reset", "first"),
        ("isolation.level", "serializable"),
        ("acks", "2"),
        ("compression.type", "brotli"),
        ("partition.assignment.strategy", "range,sticky"),
        ("security.protocol", "SASL_SSL"),
        ("bootstrap.servers", "localhost"),
        ("bootstrap.servers", "localhost:"),
        ("bootstrap.servers", "localhost:99999"),
        ("bootstrap.servers", "localhost:0"),
        ("bootstrap.servers", "::1:9092"),
        ("bootstrap.servers", "[::1:9092"),
        ("bootstrap.servers", "[nope]:9092"),
        ("bootstrap.servers", "ssl://broker:9093"),
        ("bootstrap.servers", "bad host:9092"),
    ];
    for &(key, value) in cases {
        let result = ClientConfig::from_properties([("bootstrap.servers", "h:1"), (key, value)]);
        let (got_key, _) = bad_value(result);
        assert_eq!(got_key, key, "{key}={value}");
    }
    // A list item is reported on its own.
    let (_, value) = bad_value(props(&[("partition.assignment.strategy", "range, sticky")]));
    assert_eq!(value, "sticky");
    // An alias is reported as spelled.
    let (key, _) = bad_value(props(&[("request.required.acks", "many")]));
    assert_eq!(key, "request.required.acks");
    let message = props(&[("enable.auto.commit", "yes")])
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        r#"invalid value "yes" for enable.auto.commit: expected true or false"#
    );
}

#[test]
fn broker_addresses_parse_and_display() {
    for (text, host, port, shown) in [
        ("localhost:9092", "localhost", 9092, "localhost:9092"),
        (" 10.0.0.1:19092 ", "10.0.0.1", 19092, "10.0.0.1:19092"),
        ("[::1]:9092", "::1", 9092, "[::1]:9092"),
        ("[fe80::1:2]:1", "fe80::1:2", 1, "[fe80::1:2]:1"),
        (
            "PLAINTEXT://kafka-0.kafka_svc:9092",
            "kafka-0.kafka_svc",
            9092,
            "kafka-0.kafka_svc:9092",
        ),
    ] {
        let addr: BrokerAddress = text.parse().unwrap();
        assert_eq!(addr, BrokerAddress::new(host, port), "{text}");
        assert_eq!(addr.to_string(), shown);
        assert_eq!(shown.parse::<BrokerAddress>().unwrap(), addr);
    }
    let err = "::1:9092".parse::<BrokerAddress>().unwrap_err();
    assert!(err.expected.contains("[::1]:9092"), "{err}");
    assert!("h:+1".parse::<BrokerAddress>().is_err());
}

#[test]
fn enums_display_their_canonical_value() {
    assert_eq!(
        AssignmentStrategy::CooperativeSticky.to_string(),
        "cooperative-sticky"
    );
    assert_eq!(
        "org.apache.kafka.clients.consumer.RangeAssignor".parse::<AssignmentStrategy>(),
        Ok(AssignmentStrategy::Range)
    );
    assert_eq!(
        "org.apache.kafka.clients.consumer.RoundRobinAssignor".parse::<AssignmentStrategy>(),
        Ok(AssignmentStrategy::RoundRobin)
    );
    assert_eq!(Acks::Leader.to_string(), "1");
    assert_eq!(Acks::All.as_i16(), -1);
    assert_eq!(IsolationLevel::ReadCommitted.as_i8(), 1);
    assert_eq!(AutoOffsetReset::Earliest.to_string(), "earliest");
    assert_eq!(CompressionType::Gzip.to_string(), "gzip");
}

#[test]
fn empty_bootstrap_is_rejected() {
    assert_eq!(
        conflict(ClientConfig::builder().build()),
        ["bootstrap.servers"]
    );
    assert_eq!(
        conflict(ClientConfig::builder().bootstrap_servers([" , "]).build()),
        ["bootstrap.servers"]
    );
    assert_eq!(
        conflict(ClientConfig::from_properties([("group.id", "g")])),
        ["bootstrap.servers"]
    );
    let empty: [(&str, &str); 0] = [];
    assert_eq!(
        conflict(ClientConfig::from_properties(empty)),
        ["bootstrap.servers"]
    );
}

#[test]
fn contradictions_name_the_conflicting_keys() {
    let cases: Vec<(ClientConfigBuilder, &[&str])> = vec![
        (
            base().heartbeat_interval(45 * SEC),
            &["heartbeat.interval.ms", "session.timeout.ms"],
        ),
        (
            base().session_timeout(2 * SEC),
            &["heartbeat.interval.ms", "session.timeout.ms"],
        ),
        (
            base().heartbeat_interval(Duration::ZERO),
            &["heartbeat.interval.ms"],
        ),
        (
            base().reconnect_backoff(2 * SEC),
            &["reconnect.backoff.ms", "reconnect.backoff.max.ms"],
        ),
        (
            base().retry_backoff_max(10 * MS),
            &["retry.backoff.ms", "retry.backoff.max.ms"],
        ),
        (
            base().request_timeout(Duration::ZERO),
            &["request.timeout.ms"],
        ),
        (
            base().max_in_flight(0),
            &["max.in.flight.requests.per.connection"],
        ),
        (base().acks(Acks::Leader), &["enable.idempotence", "acks"]),
        (base().acks(Acks::None), &["enable.idempotence", "acks"]),
        (
            base().max_in_flight(6),
            &[
                "enable.idempotence",
                "max.in.flight.requests.per.connection",
            ],
        ),
        (base().retries(0), &["enable.idempotence", "retries"]),
        (
            base().enable_idempotence(false).transactional_id("tx"),
            &["transactional.id", "enable.idempotence"],
        ),
        (
            base().fetch_min_bytes(2_000).fetch_max_bytes(1_000),
            &["fetch.min.bytes", "fetch.max.bytes"],
        ),
        (
            base().receive_message_max_bytes(50 * 1024 * 1024),
            &["fetch.max.bytes", "receive.message.max.bytes"],
        ),
        (
            base()
                .fetch_max_bytes(1_000)
                .receive_message_max_bytes(1_000),
            &["receive.message.max.bytes"],
        ),
        (
            base().receive_message_max_bytes(usize::MAX),
            &["receive.message.max.bytes"],
        ),
        (
            base().fetch_max_wait(30 * SEC),
            &["fetch.max.wait.ms", "request.timeout.ms"],
        ),
        (
            base().request_timeout(200 * SEC),
            &["delivery.timeout.ms", "linger.ms", "request.timeout.ms"],
        ),
        (
            base().group_instance_id("i"),
            &["group.instance.id", "group.id"],
        ),
        (base().group_id(""), &["group.id"]),
        (
            base().group_id("g").group_instance_id(""),
            &["group.instance.id"],
        ),
        (base().transactional_id(""), &["transactional.id"]),
        (base().client_id("x".repeat(40_000)), &["client.id"]),
        (
            base().session_timeout(Duration::from_secs(1 << 40)),
            &["session.timeout.ms"],
        ),
        (base().max_block(Duration::MAX), &["max.block.ms"]),
        (
            base().connections_max_idle(Some(Duration::MAX)),
            &["connections.max.idle.ms"],
        ),
        (
            base().max_poll_interval(Duration::ZERO),
            &["max.poll.interval.ms"],
        ),
        (base().max_poll_records(0), &["max.poll.records"]),
        (base().retries(u32::MAX), &["retries"]),
        (base().fetch_max_bytes(u32::MAX), &["fetch.max.bytes"]),
        (base().batch_size(u32::MAX), &["batch.size"]),
        (base().buffer_memory(u64::MAX), &["buffer.memory"]),
        (
            base().socket_send_buffer_bytes(Some(0)),
            &["socket.send.buffer.bytes"],
        ),
        (
            base().partition_assignment_strategy(vec![]),
            &["partition.assignment.strategy"],
        ),
    ];
    for (builder, want) in cases {
        let debug = format!("{builder:?}");
        assert_eq!(conflict(builder.build()), want, "{debug}");
    }
}

#[test]
fn contradictions_are_found_from_properties_too() {
    let keys = conflict(props(&[("heartbeat.interval.ms", "45000")]));
    assert_eq!(keys, ["heartbeat.interval.ms", "session.timeout.ms"]);
    let keys = conflict(props(&[("acks", "1")]));
    assert_eq!(keys, ["enable.idempotence", "acks"]);
    let err = props(&[("acks", "1")]).unwrap_err().to_string();
    assert!(
        err.contains("acks=all") && err.contains("enable.idempotence=false"),
        "{err}"
    );
}

#[test]
fn allowed_combinations_pass() {
    // Without idempotence, any acks and more in flight.
    base()
        .enable_idempotence(false)
        .acks(Acks::Leader)
        .max_in_flight(10)
        .retries(0)
        .build()
        .unwrap();
    // A session timeout above max.poll.interval is fine.
    base()
        .session_timeout(60 * SEC)
        .max_poll_interval(30 * SEC)
        .build()
        .unwrap();
    // Equal backoffs, zero linger, zero fetch.min.bytes.
    base()
        .reconnect_backoff(SEC)
        .retry_backoff(SEC)
        .linger(Duration::ZERO)
        .fetch_min_bytes(0)
        .build()
        .unwrap();
    // A partition fetch larger than the response limit is allowed (the broker caps it).
    base()
        .max_partition_fetch_bytes(i32::MAX as u32)
        .build()
        .unwrap();
}

#[test]
fn to_properties_round_trips() {
    for config in [
        ClientConfig::new("localhost:9092").unwrap(),
        everything_changed(),
    ] {
        let properties = config.to_properties();
        assert_eq!(ClientConfig::from_properties(properties).unwrap(), config);
    }
    let properties = everything_changed().to_properties();
    let get = |key: &str| {
        properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("bootstrap.servers"), Some("b1:9092,b2:9093,[::1]:9094"));
    assert_eq!(get("connections.max.idle.ms"), Some("-1"));
    assert_eq!(get("partition.assignment.strategy"), Some("roundrobin"));
    assert_eq!(get("request.timeout.ms"), Some("20000"));
    let defaults = ClientConfig::new("h:1").unwrap().to_properties();
    assert!(!defaults.iter().any(|(k, _)| k == "group.id"));
}

#[test]
fn property_table_is_consistent() {
    let canonical: Vec<&str> = PROPERTIES
        .iter()
        .filter(|p| p.alias_of.is_none())
        .map(|p| p.key)
        .collect();
    for (i, p) in PROPERTIES.iter().enumerate() {
        assert!(
            PROPERTIES[..i].iter().all(|q| q.key != p.key),
            "{} listed twice",
            p.key
        );
        if let Some(target) = p.alias_of {
            assert!(
                canonical.contains(&target),
                "{} aliases unknown {target}",
                p.key
            );
        }
    }
    // Every canonical key that stores something is written by to_properties.
    let written: Vec<String> = everything_changed()
        .to_properties()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for key in canonical {
        assert!(
            written.iter().any(|k| k == key) || key == "security.protocol",
            "{key} not written"
        );
    }
}

fn known_key() -> impl Strategy<Value = String> {
    proptest::sample::select(PROPERTIES.iter().map(|p| p.key).collect::<Vec<_>>())
        .prop_map(String::from)
}

fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z0-9:,\\[\\]. -]{0,30}",
        Just("-1".to_owned()),
        Just("true".to_owned()),
    ]
}

proptest! {
    #[test]
    fn from_properties_never_panics(
        with_bootstrap in any::<bool>(),
        pairs in proptest::collection::vec(
            (prop_oneof![known_key(), any::<String>()], any_value()),
            0..8,
        )
    ) {
        let bootstrap = with_bootstrap.then(|| ("bootstrap.servers".to_owned(), "h:1".to_owned()));
        match ClientConfig::from_properties(bootstrap.into_iter().chain(pairs)) {
            Ok(config) => {
                let again = ClientConfig::from_properties(config.to_properties());
                prop_assert_eq!(again.as_ref(), Ok(&config));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
