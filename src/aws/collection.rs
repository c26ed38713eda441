//! Moving a keyed collection that lives inside a resource (a security
//! group's rules, a route table's routes and associations, a listener's
//! rules, a distribution's behaviours) from what is live to what is wanted:
//! the same three lists for every one of them, the API calls the kind's own.

/// What to add, change and remove, in the order of `want` and `have`.
#[derive(Debug)]
pub struct Delta<'a, T> {
    /// In `want`, no item with its key in `have`.
    pub added: Vec<&'a T>,
    /// (live, wanted) pairs with the same key that differ.
    pub changed: Vec<(&'a T, &'a T)>,
    /// In `have`, no item with its key in `want`.
    pub removed: Vec<&'a T>,
}

impl<T> Delta<'_, T> {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// The delta from `have` to `want`, items matched by `key`.
pub fn delta<'a, T: PartialEq, K: PartialEq>(want: &'a [T], have: &'a [T], key: impl Fn(&T) -> K) -> Delta<'a, T> {
    let mut d = Delta { added: Vec::new(), changed: Vec::new(), removed: Vec::new() };
    for w in want {
        match have.iter().find(|h| key(h) == key(w)) {
            None => d.added.push(w),
            Some(h) if h != w => d.changed.push((h, w)),
            Some(_) => {}
        }
    }
    d.removed = have.iter().filter(|h| !want.iter().any(|w| key(w) == key(h))).collect();
    d
}

/// The delta of two sets: an item is its own key, so nothing "changes".
pub fn set_delta<'a, T: PartialEq>(want: &'a [T], have: &'a [T]) -> Delta<'a, T> {
    Delta {
        added: want.iter().filter(|w| !have.contains(w)).collect(),
        changed: Vec::new(),
        removed: have.iter().filter(|h| !want.contains(h)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_items_are_added_changed_and_removed() {
        let want = [("a", 1), ("b", 2), ("c", 3)];
        let have = [("b", 2), ("c", 4), ("d", 5)];
        let d = delta(&want, &have, |x| x.0);
        assert_eq!(d.added, vec![&("a", 1)]);
        assert_eq!(d.changed, vec![(&("c", 4), &("c", 3))]);
        assert_eq!(d.removed, vec![&("d", 5)]);
        let s = set_delta(&want, &have);
        assert_eq!(s.added, vec![&("a", 1), &("c", 3)]);
        assert_eq!(s.removed, vec![&("c", 4), &("d", 5)]);
        assert!(delta(&want, &want, |x| x.0).is_empty());
    }
}
