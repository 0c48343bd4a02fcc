//! Stable sorting without an instance of the standard sort per element type.
//!
//! `slice::sort` is generic over the element and the comparison, and each instance is
//! some 5 KB of WASM. The kernel's sorts are of short lists or off the hot path (child
//! sessions, changed elements, stored sessions, search hits), so they sort the positions
//! `0..len` with a comparison behind `dyn`, by one small merge sort, and then swap the items
//! into that order. The result is the standard stable sort's.

use std::cmp::Ordering;

/// `items.sort_by(compare)`: stable, equal items keep their order.
pub fn sort_by<T>(items: &mut [T], compare: impl Fn(&T, &T) -> Ordering) {
    let order = sorted_positions(items.len(), &|a, b| compare(&items[a], &items[b]));
    permute(&order, &mut |a, b| items.swap(a, b));
}

/// `items.sort()`.
pub fn sort<T: Ord>(items: &mut [T]) {
    sort_by(items, T::cmp);
}

/// `items.sort_by_key(key)`.
pub fn sort_by_key<T, K: Ord>(items: &mut [T], key: impl Fn(&T) -> K) {
    sort_by(items, |a, b| key(a).cmp(&key(b)));
}

/// The positions `0..len` in the order `compare` puts them, ties in ascending position: a
/// bottom-up merge sort, runs of 1, 2, 4… merged from `order` into `merged` and back.
fn sorted_positions(len: usize, compare: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut merged = order.clone();
    let mut width = 1;
    while width < len {
        for low in (0..len).step_by(2 * width) {
            let middle = (low + width).min(len);
            let high = (low + 2 * width).min(len);
            let (mut left, mut right) = (low, middle);
            for slot in &mut merged[low..high] {
                // The left run's item first unless the right one's is smaller: stable.
                if right == high
                    || (left < middle && compare(order[left], order[right]) != Ordering::Greater)
                {
                    *slot = order[left];
                    left += 1;
                } else {
                    *slot = order[right];
                    right += 1;
                }
            }
        }
        std::mem::swap(&mut order, &mut merged);
        width *= 2;
    }
    order
}

/// Puts the item at `order[k]` at `k`, for every `k`, with `swap`: one cycle of the
/// permutation at a time, each item moved into its place by one swap.
fn permute(order: &[usize], swap: &mut dyn FnMut(usize, usize)) {
    let mut placed = vec![false; order.len()];
    for start in 0..order.len() {
        let mut at = start;
        while !placed[at] {
            placed[at] = true;
            let from = order[at];
            if from == start {
                break;
            }
            // `at` now holds what belongs there; what was at `at` moves on to `from`.
            swap(at, from);
            at = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_list_sorts_as_the_standard_stable_sort(keys in proptest::collection::vec(0u8..8, 0..300)) {
            let mut ours: Vec<(u8, usize)> = keys.iter().copied().zip(0..).collect();
            let mut std = ours.clone();
            sort_by_key(&mut ours, |(k, _)| *k);
            std.sort_by_key(|(k, _)| *k);
            prop_assert_eq!(ours, std);
        }
    }

    #[test]
    fn sorts_as_the_standard_stable_sort_does() {
        let words = ["pear", "fig", "apple", "kiwi", "date", "fig", "", "plum"];
        let mut ours: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let mut std = ours.clone();
        sort(&mut ours);
        std.sort();
        assert_eq!(ours, std);
        // Equal keys keep their order.
        let mut by_len: Vec<(usize, &str)> = words.iter().copied().enumerate().collect();
        let mut std = by_len.clone();
        sort_by_key(&mut by_len, |(_, w)| w.len());
        std.sort_by_key(|(_, w)| w.len());
        assert_eq!(by_len, std);
        let mut empty: Vec<u8> = Vec::new();
        sort(&mut empty);
        assert!(empty.is_empty());
        // Longer lists, with many ties and long cycles.
        for n in [2usize, 3, 5, 7, 64, 100, 1000, 1025] {
            let mut ours: Vec<(usize, usize)> = (0..n).map(|i| ((i * 7919) % 13, i)).collect();
            let mut std = ours.clone();
            sort_by_key(&mut ours, |(k, _)| *k);
            std.sort_by_key(|(k, _)| *k);
            assert_eq!(ours, std);
            let mut reversed: Vec<usize> = (0..n).rev().collect();
            sort(&mut reversed);
            assert_eq!(reversed, (0..n).collect::<Vec<_>>());
        }
    }
}
