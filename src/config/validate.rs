//! `validate`: settings that are each well-formed but contradict each other or a protocol limit.

use std::time::Duration;

use super::{Acks, ClientConfig, ConfigError};

/// The Java client's `int` limit, which is also the limit of the `int32` fields these settings
/// travel in on the wire.
const INT_MAX: u64 = i32::MAX as u64;
const LONG_MAX: u64 = i64::MAX as u64;
/// Nullable strings on the wire carry an `int16` length.
const WIRE_STRING_MAX: usize = i16::MAX as usize;
/// librdkafka: `receive.message.max.bytes` must leave 512 bytes of protocol overhead above
/// `fetch.max.bytes`.
const RESPONSE_OVERHEAD: u64 = 512;
/// The smallest response frame limit accepted (1 KiB).
const MIN_RECEIVE_MESSAGE_MAX_BYTES: u64 = 1024;
/// The idempotent producer keeps at most 5 batches in flight per partition; the broker only
/// remembers the sequence numbers of the last 5 (Java: "Must set
/// max.in.flight.requests.per.connection to at most 5 when using the idempotent producer").
const IDEMPOTENT_MAX_IN_FLIGHT: usize = 5;

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

impl ClientConfig {
    /// Checks that the settings are in range and agree with each other. The builder and
    /// `from_properties` call this; a `ClientConfig` you hold has passed it.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the keys involved, for the first problem found, e.g.: an
    /// empty `bootstrap.servers`; `heartbeat.interval.ms` ≥ `session.timeout.ms`; a backoff above
    /// its maximum; `request.timeout.ms` of 0 or not above `fetch.max.wait.ms`;
    /// `max.in.flight.requests.per.connection` of 0; `enable.idempotence` with `acks` other than
    /// `all`, with more than 5 requests in flight or with `retries=0`; `transactional.id`
    /// without idempotence; `fetch.min.bytes` > `fetch.max.bytes`; `fetch.max.bytes` + 512 >
    /// `receive.message.max.bytes`; `delivery.timeout.ms` < `linger.ms` + `request.timeout.ms`;
    /// a value beyond what its wire field holds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_connection()?;
        self.validate_consumer()?;
        self.validate_producer()
    }

    fn validate_connection(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.is_empty() {
            return Err(ConfigError::invalid(
                &["bootstrap.servers"],
                "bootstrap.servers is empty; give at least one host:port, e.g. localhost:9092",
            ));
        }
        if let Some((addr, expected)) = self
            .bootstrap_servers
            .iter()
            .find_map(|a| a.problem().map(|p| (a, p)))
        {
            return Err(ConfigError::invalid(
                &["bootstrap.servers"],
                format!("bootstrap.servers has {addr:?}; expected {expected}"),
            ));
        }
        check_wire_string(&["client.id"], &self.client_id)?;
        if self.request_timeout.is_zero() {
            return Err(ConfigError::invalid(
                &["request.timeout.ms"],
                "request.timeout.ms is 0; every request would time out at once",
            ));
        }
        check_int_ms(&["request.timeout.ms"], self.request_timeout)?;
        check_long_ms(
            &["socket.connection.setup.timeout.ms"],
            self.connect_timeout,
        )?;
        check_long_ms(&["reconnect.backoff.ms"], self.reconnect_backoff)?;
        check_long_ms(&["reconnect.backoff.max.ms"], self.reconnect_backoff_max)?;
        check_long_ms(&["retry.backoff.ms"], self.retry_backoff)?;
        check_long_ms(&["retry.backoff.max.ms"], self.retry_backoff_max)?;
        check_long_ms(&["metadata.max.age.ms"], self.metadata_max_age)?;
        if let Some(idle) = self.connections_max_idle {
            check_long_ms(&["connections.max.idle.ms"], idle)?;
        }
        if self.reconnect_backoff > self.reconnect_backoff_max {
            return Err(ConfigError::invalid(
                &["reconnect.backoff.ms", "reconnect.backoff.max.ms"],
                format!(
                    "reconnect.backoff.ms ({} ms) is above reconnect.backoff.max.ms ({} ms)",
                    ms(self.reconnect_backoff),
                    ms(self.reconnect_backoff_max)
                ),
            ));
        }
        if self.retry_backoff > self.retry_backoff_max {
            return Err(ConfigError::invalid(
                &["retry.backoff.ms", "retry.backoff.max.ms"],
                format!(
                    "retry.backoff.ms ({} ms) is above retry.backoff.max.ms ({} ms)",
                    ms(self.retry_backoff),
                    ms(self.retry_backoff_max)
                ),
            ));
        }
        check_int(&["retries"], u64::from(self.retries), 0)?;
        check_int(
            &["max.in.flight.requests.per.connection"],
            self.max_in_flight as u64,
            1,
        )?;
        check_int(
            &["receive.message.max.bytes"],
            self.receive_message_max_bytes as u64,
            MIN_RECEIVE_MESSAGE_MAX_BYTES,
        )?;
        if let Some(n) = self.socket_send_buffer_bytes {
            check_int(&["socket.send.buffer.bytes"], n as u64, 1)?;
        }
        if let Some(n) = self.socket_receive_buffer_bytes {
            check_int(&["socket.receive.buffer.bytes"], n as u64, 1)?;
        }
        Ok(())
    }

    fn validate_consumer(&self) -> Result<(), ConfigError> {
        let c = &self.consumer;
        if let Some(group) = &c.group_id {
            if group.is_empty() {
                return Err(ConfigError::invalid(
                    &["group.id"],
                    "group.id is empty; name the group, or leave group.id out to join none",
                ));
            }
            check_wire_string(&["group.id"], group)?;
        }
        if let Some(instance) = &c.group_instance_id {
            if instance.is_empty() {
                return Err(ConfigError::invalid(
                    &["group.instance.id"],
                    "group.instance.id is empty; name the instance, or leave group.instance.id \
                     out for dynamic membership",
                ));
            }
            if c.group_id.is_none() {
                return Err(ConfigError::invalid(
                    &["group.instance.id", "group.id"],
                    "group.instance.id is set without group.id; static membership needs a group",
                ));
            }
            check_wire_string(&["group.instance.id"], instance)?;
        }
        check_int_ms(&["session.timeout.ms"], c.session_timeout)?;
        check_int_ms(&["heartbeat.interval.ms"], c.heartbeat_interval)?;
        check_int_ms(&["max.poll.interval.ms"], c.max_poll_interval)?;
        check_int_ms(&["auto.commit.interval.ms"], c.auto_commit_interval)?;
        check_int_ms(&["fetch.max.wait.ms"], c.fetch_max_wait)?;
        if c.heartbeat_interval.is_zero() {
            return Err(ConfigError::invalid(
                &["heartbeat.interval.ms"],
                "heartbeat.interval.ms is 0; heartbeats would be sent without pause",
            ));
        }
        if c.heartbeat_interval >= c.session_timeout {
            return Err(ConfigError::invalid(
                &["heartbeat.interval.ms", "session.timeout.ms"],
                format!(
                    "heartbeat.interval.ms ({} ms) must be less than session.timeout.ms ({} ms), \
                     or the member is evicted between heartbeats; a third of it is usual",
                    ms(c.heartbeat_interval),
                    ms(c.session_timeout)
                ),
            ));
        }
        if c.max_poll_interval.is_zero() {
            return Err(ConfigError::invalid(
                &["max.poll.interval.ms"],
                "max.poll.interval.ms is 0; the member would leave its group at once",
            ));
        }
        if c.fetch_max_wait >= self.request_timeout {
            return Err(ConfigError::invalid(
                &["fetch.max.wait.ms", "request.timeout.ms"],
                format!(
                    "fetch.max.wait.ms ({} ms) must be less than request.timeout.ms ({} ms), \
                     or a fetch waiting for data times out",
                    ms(c.fetch_max_wait),
                    ms(self.request_timeout)
                ),
            ));
        }
        check_int(&["fetch.min.bytes"], u64::from(c.fetch_min_bytes), 0)?;
        check_int(&["fetch.max.bytes"], u64::from(c.fetch_max_bytes), 0)?;
        check_int(
            &["max.partition.fetch.bytes"],
            u64::from(c.max_partition_fetch_bytes),
            0,
        )?;
        check_int(&["max.poll.records"], c.max_poll_records as u64, 1)?;
        if c.fetch_min_bytes > c.fetch_max_bytes {
            return Err(ConfigError::invalid(
                &["fetch.min.bytes", "fetch.max.bytes"],
                format!(
                    "fetch.min.bytes ({}) is above fetch.max.bytes ({})",
                    c.fetch_min_bytes, c.fetch_max_bytes
                ),
            ));
        }
        if u64::from(c.fetch_max_bytes) + RESPONSE_OVERHEAD > self.receive_message_max_bytes as u64
        {
            return Err(ConfigError::invalid(
                &["fetch.max.bytes", "receive.message.max.bytes"],
                format!(
                    "fetch.max.bytes ({}) plus {RESPONSE_OVERHEAD} bytes of overhead is above \
                     receive.message.max.bytes ({}), so a full fetch response would be refused",
                    c.fetch_max_bytes, self.receive_message_max_bytes
                ),
            ));
        }
        if c.partition_assignment_strategy.is_empty() {
            return Err(ConfigError::invalid(
                &["partition.assignment.strategy"],
                "partition.assignment.strategy is empty; name at least one of range, \
                 roundrobin, cooperative-sticky",
            ));
        }
        Ok(())
    }

    fn validate_producer(&self) -> Result<(), ConfigError> {
        let p = &self.producer;
        check_long_ms(&["linger.ms"], p.linger)?;
        check_int_ms(&["delivery.timeout.ms"], p.delivery_timeout)?;
        check_long_ms(&["max.block.ms"], p.max_block)?;
        check_int(&["batch.size"], u64::from(p.batch_size), 0)?;
        check_int(&["max.request.size"], u64::from(p.max_request_size), 0)?;
        if p.buffer_memory > LONG_MAX {
            return Err(ConfigError::invalid(
                &["buffer.memory"],
                format!("buffer.memory ({}) is above {LONG_MAX}", p.buffer_memory),
            ));
        }
        if let Some(id) = &p.transactional_id {
            if id.is_empty() {
                return Err(ConfigError::invalid(
                    &["transactional.id"],
                    "transactional.id is empty; name it, or leave transactional.id out for no \
                     transactions",
                ));
            }
            check_wire_string(&["transactional.id"], id)?;
            if !p.enable_idempotence {
                return Err(ConfigError::invalid(
                    &["transactional.id", "enable.idempotence"],
                    "transactional.id is set but enable.idempotence is false; transactions need \
                     the idempotent producer",
                ));
            }
        }
        if p.enable_idempotence {
            if p.acks != Acks::All {
                return Err(ConfigError::invalid(
                    &["enable.idempotence", "acks"],
                    format!(
                        "enable.idempotence is true but acks is {}; set acks=all, or \
                         enable.idempotence=false",
                        p.acks
                    ),
                ));
            }
            if self.max_in_flight > IDEMPOTENT_MAX_IN_FLIGHT {
                return Err(ConfigError::invalid(
                    &[
                        "enable.idempotence",
                        "max.in.flight.requests.per.connection",
                    ],
                    format!(
                        "enable.idempotence is true but max.in.flight.requests.per.connection is \
                         {}; the idempotent producer allows at most {IDEMPOTENT_MAX_IN_FLIGHT}",
                        self.max_in_flight
                    ),
                ));
            }
            if self.retries == 0 {
                return Err(ConfigError::invalid(
                    &["enable.idempotence", "retries"],
                    "enable.idempotence is true but retries is 0; the idempotent producer must \
                     be allowed to retry",
                ));
            }
        }
        if p.delivery_timeout < p.linger.saturating_add(self.request_timeout) {
            return Err(ConfigError::invalid(
                &["delivery.timeout.ms", "linger.ms", "request.timeout.ms"],
                format!(
                    "delivery.timeout.ms ({} ms) must be at least linger.ms ({} ms) + \
                     request.timeout.ms ({} ms), or a record can expire before its first send \
                     completes",
                    ms(p.delivery_timeout),
                    ms(p.linger),
                    ms(self.request_timeout)
                ),
            ));
        }
        Ok(())
    }
}

fn check_wire_string(keys: &'static [&'static str; 1], value: &str) -> Result<(), ConfigError> {
    let [key] = *keys;
    if value.len() > WIRE_STRING_MAX {
        return Err(ConfigError::invalid(
            keys,
            format!(
                "{key} is {} bytes long; the protocol allows at most {WIRE_STRING_MAX}",
                value.len()
            ),
        ));
    }
    Ok(())
}

fn check_int_ms(keys: &'static [&'static str; 1], d: Duration) -> Result<(), ConfigError> {
    check_ms(keys, d, INT_MAX)
}

fn check_long_ms(keys: &'static [&'static str; 1], d: Duration) -> Result<(), ConfigError> {
    check_ms(keys, d, LONG_MAX)
}

fn check_ms(keys: &'static [&'static str; 1], d: Duration, max: u64) -> Result<(), ConfigError> {
    let [key] = *keys;
    if d.as_millis() > u128::from(max) {
        return Err(ConfigError::invalid(
            keys,
            format!("{key} ({} ms) is above {max} ms", d.as_millis()),
        ));
    }
    Ok(())
}

fn check_int(keys: &'static [&'static str; 1], n: u64, min: u64) -> Result<(), ConfigError> {
    let [key] = *keys;
    if n < min || n > INT_MAX {
        return Err(ConfigError::invalid(
            keys,
            format!("{key} is {n}; expected {min} to {INT_MAX}"),
        ));
    }
    Ok(())
}
