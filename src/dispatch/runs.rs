//! [`RunSet`]: a set of offsets kept as disjoint runs, so that a long stretch of finished
//! offsets above one stuck record costs one entry, not one per offset.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent runs `start → end` (end exclusive).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunSet {
    runs: BTreeMap<i64, i64>,
}

impl RunSet {
    pub fn contains(&self, offset: i64) -> bool {
        self.runs
            .range(..=offset)
            .next_back()
            .is_some_and(|(_, &end)| offset < end)
    }

    pub fn insert(&mut self, offset: i64) {
        // Offsets mostly arrive in order: extend the last run.
        if let Some(mut last) = self.runs.last_entry() {
            if *last.get() == offset {
                *last.get_mut() = offset + 1;
                return;
            }
            if *last.key() <= offset && offset < *last.get() {
                return;
            }
        }
        if self.contains(offset) {
            return;
        }
        let mut start = offset;
        let mut end = offset + 1;
        if let Some((&s, &e)) = self.runs.range(..offset).next_back()
            && e == offset
        {
            start = s;
            self.runs.remove(&s);
        }
        if let Some(e) = self.runs.remove(&end) {
            end = e;
        }
        self.runs.insert(start, end);
    }

    /// Adds every offset of `start..end`.
    pub fn insert_range(&mut self, start: i64, end: i64) {
        if end <= start {
            return;
        }
        let mut lo = start;
        let mut hi = end;
        // Absorb every run that overlaps or touches [start, end).
        let touching: Vec<(i64, i64)> = self
            .runs
            .range(..=end)
            .filter(|&(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.runs.remove(&s);
            lo = lo.min(s);
            hi = hi.max(e);
        }
        self.runs.insert(lo, hi);
    }

    /// Removes every offset of `start..end`.
    pub fn remove_range(&mut self, start: i64, end: i64) {
        if end <= start {
            return;
        }
        // The runs that overlap [start, end) are the last ones beginning before `end`.
        let overlapping: Vec<(i64, i64)> = self
            .runs
            .range(..end)
            .rev()
            .take_while(|&(_, &e)| e > start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in overlapping {
            self.runs.remove(&s);
            if s < start {
                self.runs.insert(s, start);
            }
            if e > end {
                self.runs.insert(end, e);
            }
        }
    }

    /// The smallest offset in the set.
    pub fn first(&self) -> Option<i64> {
        self.runs.first_key_value().map(|(&s, _)| s)
    }

    /// How many offsets the set holds.
    pub fn len(&self) -> u64 {
        self.runs.iter().map(|(&s, &e)| (e - s) as u64).sum()
    }

    /// Whether any offset of `start..end` is in the set.
    pub fn intersects(&self, start: i64, end: i64) -> bool {
        start < end
            && self
                .runs
                .range(..end)
                .next_back()
                .is_some_and(|(_, &e)| e > start)
    }

    /// Drops every offset below `offset`.
    pub fn remove_below(&mut self, offset: i64) {
        let mut keep = self.runs.split_off(&offset);
        if let Some((_, &e)) = self.runs.iter().next_back()
            && e > offset
        {
            keep.insert(offset, e);
        }
        self.runs = keep;
    }

    pub fn runs(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.runs.iter().map(|(&s, &e)| (s, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn behaves_like_a_set(ops in proptest::collection::vec((0i64..200, 0u8..4, 0i64..9), 0..300)) {
            let mut runs = RunSet::default();
            let mut set = BTreeSet::new();
            for (o, kind, len) in ops {
                match kind {
                    0 => {
                        runs.remove_below(o);
                        set = set.split_off(&o);
                    }
                    1 => {
                        runs.insert(o);
                        set.insert(o);
                    }
                    2 => {
                        runs.remove_range(o, o + len);
                        set.retain(|x| !(o..o + len).contains(x));
                    }
                    _ => {
                        runs.insert_range(o, o + len);
                        set.extend(o..o + len);
                    }
                }
                let flat: Vec<i64> = runs.runs().flat_map(|(s, e)| s..e).collect();
                prop_assert_eq!(&flat, &set.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(runs.len(), set.len() as u64);
                prop_assert_eq!(runs.first(), set.first().copied());

                // Runs are never adjacent (they would have merged).
                let v: Vec<(i64, i64)> = runs.runs().collect();
                for w in v.windows(2) {
                    prop_assert!(w[0].1 < w[1].0);
                }
            }
            for o in 0..200 {
                prop_assert_eq!(runs.contains(o), set.contains(&o));
                for len in [0, 1, 3, 17] {
                    prop_assert_eq!(
                        runs.intersects(o, o + len),
                        set.range(o..o + len).next().is_some()
                    );
                }
            }
        }
    }
}
