//! Stable sorting through one instance of the standard sort.
//!
//! `slice::sort` is generic over the element and the comparison, and each instance is
//! some 5 KB of WASM. The kernel's sorts are of short lists or off the hot path (child
//! sessions, changed elements, stored sessions, search hits), so they sort the positions
//! `0..len` with a comparison behind `dyn`, a single instance, and then move the items into
//! that order. The result is the standard stable sort's.

use std::cmp::Ordering;

/// `items.sort_by(compare)`: stable, equal items keep their order.
pub fn sort_by<T>(items: &mut Vec<T>, compare: impl Fn(&T, &T) -> Ordering) {
    let order = sorted_positions(items.len(), &|a, b| compare(&items[a], &items[b]));
    let mut taken: Vec<Option<T>> = std::mem::take(items).into_iter().map(Some).collect();
    // `order` is a permutation of the positions, so each one is taken exactly once.
    *items = order.into_iter().filter_map(|i| taken[i].take()).collect();
}

/// `items.sort()`.
pub fn sort<T: Ord>(items: &mut Vec<T>) {
    sort_by(items, T::cmp);
}

/// `items.sort_by_key(key)`.
pub fn sort_by_key<T, K: Ord>(items: &mut Vec<T>, key: impl Fn(&T) -> K) {
    sort_by(items, |a, b| key(a).cmp(&key(b)));
}

/// The positions `0..len` in the order `compare` puts them, ties in ascending position.
fn sorted_positions(len: usize, compare: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|a, b| compare(*a, *b));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
