//! The `cooperative-sticky` assignor.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::common::{Collector, check_metadata};
use super::{
    Assignor, AssignorError, ClusterTopics, GroupAssignment, MemberSubscription, RebalanceProtocol,
    Subscription,
};

/// `cooperative-sticky` (Java `CooperativeStickyAssignor`, KIP-429 on top of the sticky
/// assignor of KIP-54 and KIP-341): balanced, as sticky as balance allows, and cooperative.
///
/// **Ownership.** Each member's `owned_partitions` are its current partitions. A claim is valid
/// for a topic the member still subscribes to, in the metadata, on a partition that exists.
/// When several members claim a partition, the valid claimant with the highest generation owns
/// it; if the highest generation is shared, nobody does (the partition is disputed). A member's
/// generation is its subscription's `generation_id`, or, for subscriptions older than version 2,
/// the `i32` this assignor puts in `user_data` (see [`Assignor::subscription_user_data`]).
///
/// **Stickiness and balance.** Every member keeps its valid owned partitions; free partitions go,
/// topics with the fewest subscribers first, to the eligible member with the fewest partitions;
/// then, one at a time, a partition moves from the most loaded member to an eligible member with
/// at least two fewer, until no such move exists. A move of a newly given partition, which
/// revokes nothing, is preferred to one of an owned partition; of owned ones the highest numbers
/// go first, so members keep their lowest, as in Java. The end state meets the Java assignor's balance
/// criterion: no partition could move to a member that subscribes to its topic and has two or
/// more fewer partitions. So members with identical subscriptions differ by at most one
/// partition, and when all members subscribe alike each gets `⌊P/N⌋` or `⌈P/N⌉`. Draining the
/// most loaded member first leaves the larger shares with the members that owned the most: when
/// all subscribe alike, the number of owned partitions that move is the least balance allows,
/// and no member both gains and loses partitions.
///
/// **Cooperation.** A partition that must change hands is not given to its new member in this
/// rebalance. It is left out of every assignment, so its current owner sees it missing and
/// revokes it; the revoking member then rejoins at once (the membership layer's job, as in
/// Java's `ConsumerCoordinator`), and the follow-up rebalance, where nobody claims it any more,
/// assigns it. A partition is held back when it is disputed, or when it goes to a member that is
/// not its valid owner while some other member claims it (validly or not, whatever the
/// generation: that member may be consuming it). A partition its valid owner keeps is not held
/// back; other, stale claimants see it missing and revoke it. The assignor is deterministic, so
/// in the follow-up the partition normally lands where the first round meant it to go: when all
/// members subscribe alike and their claims are consistent, the follow-up assigns everything
/// held back and moves nothing else. With unequal subscriptions the greedy balancing now and
/// then moves one more owned partition in the follow-up, which costs a third rebalance (about
/// one group in fifty in the randomized tests); Java's general algorithm is greedy too.
///
/// Free partitions and moves go to the least loaded eligible member; on a tie, to the one
/// subscribed to fewer topics (it has fewer other ways to get its share), then by member id.
///
/// Differences from Java, none visible on the wire: ties are broken as above where Java follows
/// `HashMap` order; Java resolves double claims pairwise in member order (so a tie of
/// generations below a higher claim still invalidates the partition) and reads the second
/// claimant's generation from the `generation_id` field only; Java's general (unequal
/// subscriptions) algorithm can hand a partition straight to a stale claimant, which this
/// assignor holds back. The rack-aware variant is not implemented.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn protocol_kind(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    /// The generation as a big-endian `i32` (Java's `CooperativeStickyAssignor` user data v0).
    fn subscription_user_data(&self, generation_id: i32) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(&generation_id.to_be_bytes()))
    }

    fn assign(
        &self,
        metadata: &ClusterTopics,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> Result<GroupAssignment, AssignorError> {
        check_metadata(metadata)?;
        Ok(Sticky::new(metadata, members).run())
    }
}

/// The generation a member's owned partitions belong to: the subscription's `generation_id`
/// (version 2 and later), else the big-endian `i32` at the start of `user_data`, else -1. Java
/// reads user data it cannot parse as -1 too.
pub(super) fn member_generation(subscription: &Subscription) -> i32 {
    if subscription.generation_id >= 0 {
        return subscription.generation_id;
    }
    subscription
        .user_data
        .as_deref()
        .and_then(|data| data.get(..4))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(-1, i32::from_be_bytes)
}

/// A partition: index into [`Sticky::topics`] and partition number. Ordered by topic name, then
/// partition, since topics are indexed in name order.
type Tp = (usize, i32);

/// One member's partitions while the assignment is built.
struct Load {
    /// Partitions the member did not own before.
    fresh: BTreeSet<Tp>,
    /// Owned partitions it keeps so far, as `(partition, topic)`: the highest numbers last.
    kept: BTreeSet<(i32, usize)>,
}

impl Load {
    fn len(&self) -> usize {
        self.fresh.len() + self.kept.len()
    }

    fn iter(&self) -> impl Iterator<Item = Tp> + '_ {
        self.fresh
            .iter()
            .copied()
            .chain(self.kept.iter().map(|&(p, t)| (t, p)))
    }
}

struct Sticky<'a> {
    members: &'a BTreeMap<String, MemberSubscription>,
    /// Member ids, in id order; members are referred to by index.
    ids: Vec<&'a str>,
    /// Topics in the metadata with partitions and at least one subscriber, in name order.
    topics: Vec<(&'a str, i32)>,
    /// Members subscribed to each topic, ascending.
    topic_members: Vec<Vec<usize>>,
    /// Number of topics in `topics` each member subscribes to.
    member_topics: Vec<usize>,
    /// Every member that lists the partition in `owned_partitions`, valid or not.
    claims: BTreeMap<Tp, Vec<usize>>,
    /// The valid owner of each owned partition.
    owner: BTreeMap<Tp, usize>,
    /// Partitions whose valid claimants of the highest generation are more than one.
    disputed: BTreeSet<Tp>,
    /// Each member's valid owned partitions.
    owned: Vec<BTreeSet<Tp>>,
}

impl<'a> Sticky<'a> {
    fn new(metadata: &'a ClusterTopics, members: &'a BTreeMap<String, MemberSubscription>) -> Self {
        let ids: Vec<&str> = members.keys().map(String::as_str).collect();
        let subscribed: Vec<BTreeSet<&str>> = members
            .values()
            .map(|m| m.subscription.topics.iter().map(String::as_str).collect())
            .collect();
        let topics: Vec<(&str, i32)> = metadata
            .iter()
            .filter(|(topic, count)| *count > 0 && subscribed.iter().any(|s| s.contains(topic)))
            .collect();
        let topic_members = topics
            .iter()
            .map(|(topic, _)| {
                (0..ids.len())
                    .filter(|m| subscribed[*m].contains(topic))
                    .collect()
            })
            .collect();

        let member_topics = subscribed
            .iter()
            .map(|s| topics.iter().filter(|(t, _)| s.contains(t)).count())
            .collect();
        let mut sticky = Sticky {
            members,
            ids,
            topics,
            topic_members,
            member_topics,
            claims: BTreeMap::new(),
            owner: BTreeMap::new(),
            disputed: BTreeSet::new(),
            owned: vec![BTreeSet::new(); members.len()],
        };
        sticky.resolve_ownership();
        sticky
    }

    fn subscribes(&self, m: usize, t: usize) -> bool {
        self.topic_members[t].binary_search(&m).is_ok()
    }

    /// Fills `claims`, `owner`, `disputed` and `owned` from the members' `owned_partitions`.
    ///
    /// A claim is valid if the member subscribes to the topic. The valid owner is the valid
    /// claimant of the highest generation; if several share it, the partition is disputed and
    /// nobody owns it (Java's `AbstractStickyAssignor.allSubscriptionsEqual` does this pairwise
    /// in member order, which also invalidates a tie below a higher generation's claim).
    fn resolve_ownership(&mut self) {
        let topic_index: BTreeMap<&str, usize> = self
            .topics
            .iter()
            .enumerate()
            .map(|(i, (t, _))| (*t, i))
            .collect();
        for (m, member) in self.members.values().enumerate() {
            for owned in &member.subscription.owned_partitions {
                let Some(&t) = topic_index.get(owned.topic.as_str()) else {
                    continue;
                };
                let count = self.topics[t].1;
                for &p in owned.partitions.iter().filter(|p| (0..count).contains(*p)) {
                    let claimants = self.claims.entry((t, p)).or_default();
                    if !claimants.contains(&m) {
                        claimants.push(m);
                    }
                }
            }
        }

        let generations: Vec<i32> = self
            .members
            .values()
            .map(|m| member_generation(&m.subscription))
            .collect();
        for (&tp, claimants) in &self.claims {
            let valid = claimants
                .iter()
                .copied()
                .filter(|&m| self.subscribes(m, tp.0));
            let Some(newest) = valid.clone().map(|m| generations[m]).max() else {
                continue;
            };
            let mut winners = valid.filter(|&m| generations[m] == newest);
            match (winners.next(), winners.next()) {
                (Some(m), None) => {
                    self.owner.insert(tp, m);
                    self.owned[m].insert(tp);
                }
                _ => {
                    self.disputed.insert(tp);
                }
            }
        }
    }

    fn run(self) -> GroupAssignment {
        let mut loads: Vec<Load> = self
            .owned
            .iter()
            .map(|owned| Load {
                fresh: BTreeSet::new(),
                kept: owned.iter().map(|&(t, p)| (p, t)).collect(),
            })
            .collect();
        self.assign_free(&mut loads);
        self.balance(&mut loads);

        let mut out = Collector::new(self.members);
        for (m, load) in loads.iter().enumerate() {
            for tp in load.iter() {
                if !self.held_back(tp, m) {
                    out.add(self.ids[m], self.topics[tp.0].0, tp.1);
                }
            }
        }
        out.finish()
    }

    /// Gives each partition nobody validly owns to the eligible member with the fewest
    /// partitions (lowest index on ties), topics with the fewest subscribers first.
    fn assign_free(&self, loads: &mut [Load]) {
        let mut topic_order: Vec<usize> = (0..self.topics.len()).collect();
        topic_order.sort_by_key(|&t| (self.topic_members[t].len(), t));
        for t in topic_order {
            for p in 0..self.topics[t].1 {
                if self.owner.contains_key(&(t, p)) {
                    continue;
                }
                // Every topic in `topics` has a subscriber.
                if let Some(m) = self.least_loaded(t, loads, None) {
                    loads[m].fresh.insert((t, p));
                }
            }
        }
    }

    /// The member subscribed to topic `t` with the fewest partitions (lowest index on ties),
    /// other than `except`.
    fn least_loaded(&self, t: usize, loads: &[Load], except: Option<usize>) -> Option<usize> {
        self.topic_members[t]
            .iter()
            .copied()
            .filter(|&m| Some(m) != except)
            .min_by_key(|&m| (loads[m].len(), self.member_topics[m], m))
    }

    /// Moves one partition at a time from the most loaded member that has a partition some
    /// eligible member with at least two fewer could take, until there is none; a move that
    /// revokes nothing goes before one that does. Draining the most loaded member first keeps
    /// the larger shares with the members that owned the most, which moves the fewest owned
    /// partitions. Each move lowers the sum of squared counts, so this ends.
    fn balance(&self, loads: &mut [Load]) {
        let mut order: Vec<usize> = (0..loads.len()).collect();
        loop {
            order.sort_by_key(|&m| (Reverse(loads[m].len()), m));
            let min = order.last().map_or(0, |&m| loads[m].len());
            let candidates = || order.iter().take_while(|&&m| loads[m].len() >= min + 2);
            // A move that revokes nothing, if there is one, before one that does.
            let Some((from, tp, to)) = candidates()
                .find_map(|&from| self.movable(from, loads, false))
                .or_else(|| candidates().find_map(|&from| self.movable(from, loads, true)))
            else {
                return;
            };
            loads[from].fresh.remove(&tp);
            loads[from].kept.remove(&(tp.1, tp.0));
            if self.owned[to].contains(&tp) {
                loads[to].kept.insert((tp.1, tp.0));
            } else {
                loads[to].fresh.insert(tp);
            }
        }
    }

    /// A partition of `from` and a member to take it, if one subscribed to its topic has at
    /// least two fewer partitions. Partitions `from` did not own come first (moving them costs no
    /// revocation), and only they unless `owned`; of owned ones, the highest partition numbers
    /// go first, so a member keeps its lowest ones, as Java's constrained assignment does.
    fn movable(&self, from: usize, loads: &[Load], owned: bool) -> Option<(usize, Tp, usize)> {
        let count = loads[from].len();
        let fresh = loads[from].fresh.iter().copied();
        let kept = loads[from].kept.iter().rev().map(|&(p, t)| (t, p));
        let kept = kept.take(if owned { usize::MAX } else { 0 });
        fresh.chain(kept).find_map(|tp| {
            let to = self.least_loaded(tp.0, loads, Some(from))?;
            (loads[to].len() + 2 <= count).then_some((from, tp, to))
        })
    }

    /// Whether `tp`, assigned to member `to`, must first be revoked by someone else: it is
    /// disputed, or `to` is not its valid owner and another member claims it.
    fn held_back(&self, tp: Tp, to: usize) -> bool {
        self.disputed.contains(&tp)
            || (self.owner.get(&tp) != Some(&to)
                && self
                    .claims
                    .get(&tp)
                    .is_some_and(|claimants| claimants.iter().any(|&c| c != to)))
    }
}
