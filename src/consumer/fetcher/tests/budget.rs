use std::sync::Arc;

use crate::config::ClientConfig;
use crate::consumer::fetcher::broker_loop::reservation_bounds;
use crate::consumer::fetcher::state::{Budget, Settings};

const MIB: usize = 1024 * 1024;

fn settings(fetch_max: u32, partition_max: u32) -> Settings {
    let config = ClientConfig::new("localhost:9092")
        .unwrap()
        .to_builder()
        .fetch_max_bytes(fetch_max)
        .max_partition_fetch_bytes(partition_max)
        .build()
        .unwrap();
    Settings::from_config(&config, None)
}

#[test]
fn a_request_reserves_no_more_than_its_partitions_can_return() {
    let s = settings(50 * MIB as u32, MIB as u32);
    let limit = s.budget;
    assert_eq!(limit, 100 * MIB);
    assert_eq!(reservation_bounds(&s, 1, limit), (MIB, MIB));
    assert_eq!(reservation_bounds(&s, 3, limit), (3 * MIB, 3 * MIB));
    // Capped by fetch.max.bytes, and then it waits for half the budget.
    assert_eq!(reservation_bounds(&s, 200, limit), (50 * MIB, 50 * MIB));
    // A budget smaller than a partition's share: half of it must be free.
    assert_eq!(reservation_bounds(&s, 1, MIB / 2), (MIB / 4, MIB));
}

/// Three brokers' loops, two of them long-polling caught-up partitions: the third still gets
/// budget for its request. (Each used to reserve all of `fetch.max.bytes`, so two requests in
/// flight held the whole default budget and the third loop waited for as long as they kept it.)
#[test]
fn loops_polling_caught_up_partitions_leave_budget_for_another_broker() {
    let s = settings(50 * MIB as u32, MIB as u32);
    let budget = Arc::new(Budget::new(s.budget));
    let mut held = Vec::new();
    for partitions in [2, 1] {
        let (min, max) = reservation_bounds(&s, partitions, budget.limit);
        held.push(
            budget
                .try_reserve(min, max)
                .expect("room for a polling loop"),
        );
    }
    let (min, max) = reservation_bounds(&s, 1, budget.limit);
    assert_eq!(budget.try_reserve(min, max), Some(MIB));
    // And a full budget still stops a request: the bound holds.
    let _charge = budget.charge(0, budget.limit);
    assert_eq!(budget.try_reserve(min, max), None);
}
