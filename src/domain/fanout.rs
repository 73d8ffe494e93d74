//! Bounded fan-out: telling hundreds of credentials' Gate objects something
//! (revoke, reload) within the Free plan's 50 subrequests per invocation.
//!
//! The Worker sends the whole list in one call to a fan-out object. An object
//! given at most `LEAF` calls makes them itself; given more, it splits the
//! list into at most `LEAF` parts and hands each to a child fan-out object.
//! So no invocation makes more than `LEAF` subrequests, the Worker makes one,
//! and N calls take about N/LEAF extra objects and log_LEAF(N) levels. Pure.

use std::ops::Range;

/// The most subrequests one fan-out invocation makes (50 is the Free plan's
/// limit per invocation; the rest is headroom).
pub const LEAF: usize = 40;
const _: () = assert!(LEAF < 50, "the Free plan allows 50 subrequests per invocation");

/// What a fan-out object does with `n` calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Make the calls itself.
    Direct,
    /// Hand each range of the list to a child.
    Split(Vec<Range<usize>>),
}

pub fn plan(n: usize, leaf: usize) -> Plan {
    let leaf = leaf.max(2);
    if n <= leaf {
        return Plan::Direct;
    }
    // Children get equal parts; each part as large as needed for at most `leaf` parts.
    let mut part = leaf;
    while n.div_ceil(part) > leaf {
        part *= leaf;
    }
    Plan::Split((0..n).step_by(part).map(|s| s..(s + part).min(n)).collect())
}

/// The most subrequests any invocation makes, and how many invocations in
/// all, when fanning out `n` calls (for the budget and its tests).
pub fn cost(n: usize, leaf: usize) -> (usize, usize) {
    match plan(n, leaf) {
        Plan::Direct => (n, 1),
        Plan::Split(parts) => {
            let mut widest = parts.len();
            let mut invocations = 1;
            for r in parts {
                let (w, i) = cost(r.len(), leaf);
                widest = widest.max(w);
                invocations += i;
            }
            (widest, invocations)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_lists_are_called_directly() {
        assert_eq!(plan(0, LEAF), Plan::Direct);
        assert_eq!(plan(LEAF, LEAF), Plan::Direct);
        assert_eq!(cost(LEAF, LEAF), (LEAF, 1));
    }

    #[test]
    fn large_lists_split_into_at_most_leaf_parts_covering_every_call_once() {
        for n in [LEAF + 1, 350, 1600, 1601, 10_000, 100_000] {
            let Plan::Split(parts) = plan(n, LEAF) else { panic!("{n} must split") };
            assert!(parts.len() <= LEAF, "{n}: {} parts", parts.len());
            assert_eq!(parts.first().unwrap().start, 0);
            assert_eq!(parts.last().unwrap().end, n);
            assert!(parts.windows(2).all(|w| w[0].end == w[1].start && !w[0].is_empty()));
        }
    }

    #[test]
    fn no_invocation_makes_more_than_leaf_subrequests() {
        // 300 sessions and 50 keys: the root hands 9 parts to children, each calls 40 or fewer.
        assert_eq!(cost(350, LEAF), (LEAF, 10));
        for n in [1, 41, 350, 1600, 1601, 64_001, 200_000] {
            let (widest, invocations) = cost(n, LEAF);
            assert!(widest <= LEAF, "{n}: {widest}");
            assert!(invocations <= n.div_ceil(LEAF - 1) + 2, "{n}: {invocations} invocations");
        }
    }
}
