//! Orders over `[0, n)`: mixed-radix decoding (last axis fastest), lazy views (slices, shards) and
//! a keyed pseudo-random bijection (a Feistel network with cycle walking) for `shuffled(seed)`.

use crate::error::{Error, Result};

/// Writes the mixed-radix digits of `i` (last digit fastest). `i` must be below the product.
pub fn decode(mut i: u128, radices: &[u64], out: &mut [u64]) {
    if i <= u64::MAX as u128 {
        // u64 division is several times cheaper than u128 division.
        let mut j = i as u64;
        for (d, &r) in out.iter_mut().zip(radices).rev() {
            *d = j % r;
            j /= r;
        }
        return;
    }
    for (d, &r) in out.iter_mut().zip(radices).rev() {
        *d = (i % r as u128) as u64;
        i /= r as u128;
    }
}

/// The inverse of `decode`.
pub fn encode(digits: &[u64], radices: &[u64]) -> u128 {
    digits
        .iter()
        .zip(radices)
        .fold(0u128, |acc, (&d, &r)| acc * r as u128 + d as u128)
}

/// Steps `digits` to the next index; returns the first axis that changed (all later ones changed
/// too), or `None` when it wrapped past the end.
pub fn increment(digits: &mut [u64], radices: &[u64]) -> Option<usize> {
    for a in (0..digits.len()).rev() {
        digits[a] += 1;
        if digits[a] < radices[a] {
            return Some(a);
        }
        digits[a] = 0;
    }
    None
}

/// Product of sizes, `None` past u128.
pub fn product(sizes: impl IntoIterator<Item = u128>) -> Option<u128> {
    sizes
        .into_iter()
        .try_fold(1u128, |acc, s| acc.checked_mul(s))
}

const ROUNDS: usize = 8;

/// A keyed bijection on `[0, n)`: a balanced Feistel network on the smallest even-width bit domain
/// holding `n`, cycle-walked back into range (the domain is < 4n, so < 4 rounds on average).
/// Integer-only arithmetic: the same seed gives the same order on every machine.
#[derive(Debug, Clone)]
pub struct Permutation {
    n: u128,
    half: u32,
    keys: [u64; ROUNDS],
}

fn mix(mut z: u64) -> u64 {
    // SplitMix64's finaliser: a fixed, well-studied 64-bit mixer.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Permutation {
    pub fn new(n: u128, seed: u64) -> Self {
        let bits = 128 - n.saturating_sub(1).leading_zeros();
        let half = bits.div_ceil(2).max(1);
        let mut state = seed;
        let keys = std::array::from_fn(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            mix(state)
        });
        Permutation { n, half, keys }
    }

    pub fn len(&self) -> u128 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn mask(&self) -> u128 {
        (1u128 << self.half) - 1
    }

    fn round(&self, r: usize, x: u128) -> u128 {
        let lo = x as u64;
        let hi = (x >> 64) as u64;
        (mix(mix(lo ^ self.keys[r]) ^ hi) as u128) & self.mask()
    }

    fn forward_once(&self, x: u128) -> u128 {
        let (mut l, mut r) = (x >> self.half, x & self.mask());
        for k in 0..ROUNDS {
            (l, r) = (r, l ^ self.round(k, r));
        }
        (l << self.half) | r
    }

    fn inverse_once(&self, y: u128) -> u128 {
        let (mut l, mut r) = (y >> self.half, y & self.mask());
        for k in (0..ROUNDS).rev() {
            (l, r) = (r ^ self.round(k, l), l);
        }
        (l << self.half) | r
    }

    /// Position `i` of the shuffled order → index in the underlying order.
    pub fn apply(&self, i: u128) -> u128 {
        let mut x = self.forward_once(i);
        while x >= self.n {
            x = self.forward_once(x);
        }
        x
    }

    pub fn invert(&self, x: u128) -> u128 {
        let mut i = self.inverse_once(x);
        while i >= self.n {
            i = self.inverse_once(i);
        }
        i
    }
}

/// One layer of a view: maps its positions onto the positions of the layer below.
#[derive(Debug, Clone)]
pub enum Layer {
    Range { start: i128, step: i128, len: u128 },
    Perm(Permutation),
}

/// A lazy view of `[0, base)`: layers applied outermost first. Empty layers = the identity.
#[derive(Debug, Clone)]
pub struct View {
    layers: Vec<Layer>,
    len: u128,
}

fn overflow() -> Error {
    Error::Overflow("grid is too large for this view (positions beyond 2^127)".into())
}

impl View {
    pub fn identity(len: u128) -> Self {
        View {
            layers: Vec::new(),
            len,
        }
    }

    pub fn len(&self) -> u128 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `Some((start, step))` when positions map to `start + step·i` (slices and shards only).
    pub fn as_range(&self) -> Option<(i128, i128)> {
        match self.layers.as_slice() {
            [] => Some((0, 1)),
            [Layer::Range { start, step, .. }] => Some((*start, *step)),
            _ => None,
        }
    }

    /// A sub-view `start + step·i` for `i` in `0..len` (positions of this view).
    pub fn slice(&self, start: i128, step: i128, len: u128) -> Result<View> {
        let mut layers = self.layers.clone();
        match layers.last_mut() {
            // Ranges of ranges compose into one range, so repeated slicing stays O(1) per index.
            Some(Layer::Range {
                start: s0,
                step: st0,
                len: l0,
            }) => {
                *s0 = st0
                    .checked_mul(start)
                    .and_then(|x| x.checked_add(*s0))
                    .ok_or_else(overflow)?;
                *st0 = st0.checked_mul(step).ok_or_else(overflow)?;
                *l0 = len;
            }
            _ => layers.push(Layer::Range { start, step, len }),
        }
        Ok(View { layers, len })
    }

    pub fn shuffled(&self, seed: u64) -> View {
        let mut layers = self.layers.clone();
        layers.push(Layer::Perm(Permutation::new(self.len, seed)));
        View {
            layers,
            len: self.len,
        }
    }

    /// Position in this view → position in the base. `i` must be below `len()`.
    pub fn map(&self, i: u128) -> u128 {
        let mut x = i;
        for layer in self.layers.iter().rev() {
            x = match layer {
                Layer::Range { start, step, .. } => (*start + *step * x as i128) as u128,
                Layer::Perm(p) => p.apply(x),
            };
        }
        x
    }

    /// Base position → position in this view, if the view contains it.
    pub fn unmap(&self, base: u128) -> Option<u128> {
        let mut x = base;
        for layer in &self.layers {
            x = match layer {
                Layer::Range { start, step, len } => {
                    let off = i128::try_from(x).ok()?.checked_sub(*start)?;
                    if off % step != 0 {
                        return None;
                    }
                    let i = off / step;
                    if i < 0 || i as u128 >= *len {
                        return None;
                    }
                    i as u128
                }
                Layer::Perm(p) => {
                    if x >= p.len() {
                        return None;
                    }
                    p.invert(x)
                }
            };
        }
        Some(x)
    }
}

/// The bounds of shard `k` of `n` over `len` positions: contiguous, sizes differing by at most 1.
pub fn shard_bounds(len: u128, k: u128, n: u128) -> (u128, u128) {
    let (q, r) = (len / n, len % n);
    let start = k * q + k.min(r);
    let size = q + u128::from(k < r);
    (start, start + size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_encode_roundtrip_last_fastest() {
        let radices = [3, 1, 4, 2];
        let mut d = [0; 4];
        let mut expected = [0u64; 4];
        for i in 0..24u128 {
            decode(i, &radices, &mut d);
            assert_eq!(d, expected);
            assert_eq!(encode(&d, &radices), i);
            increment(&mut expected, &radices);
        }
        decode(u64::MAX as u128 * 5 + 3, &[u64::MAX, 7], &mut d[..2]);
        assert_eq!(encode(&d[..2], &[u64::MAX, 7]), u64::MAX as u128 * 5 + 3);
    }

    #[test]
    fn permutations_are_bijections_and_invertible() {
        for n in [0u128, 1, 2, 3, 5, 16, 17, 1000] {
            let p = Permutation::new(n, 42);
            let mut seen: Vec<u128> = (0..n).map(|i| p.apply(i)).collect();
            for (i, &x) in seen.iter().enumerate() {
                assert_eq!(p.invert(x), i as u128);
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
        }
        let big = Permutation::new(1u128 << 100, 7);
        let x = big.apply(123_456_789);
        assert!(x < 1u128 << 100);
        assert_eq!(big.invert(x), 123_456_789);
    }

    #[test]
    fn seeds_give_fixed_different_orders() {
        let order = |seed| {
            (0..10)
                .map(|i| Permutation::new(10, seed).apply(i))
                .collect::<Vec<_>>()
        };
        assert_eq!(order(1), order(1));
        assert_ne!(order(1), order(2));
        assert_ne!(order(1), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn views_compose_and_invert() {
        let v = View::identity(100)
            .slice(10, 3, 20)
            .unwrap()
            .slice(19, -2, 5)
            .unwrap();
        let got: Vec<_> = (0..5).map(|i| v.map(i)).collect();
        assert_eq!(got, [67, 61, 55, 49, 43]);
        assert_eq!(v.unmap(55), Some(2));
        assert_eq!(v.unmap(56), None);
        let s = v.shuffled(3);
        let mut got: Vec<_> = (0..5).map(|i| s.map(i)).collect();
        for (i, &x) in got.iter().enumerate() {
            assert_eq!(s.unmap(x), Some(i as u128));
        }
        got.sort_unstable();
        assert_eq!(got, [43, 49, 55, 61, 67]);
    }

    #[test]
    fn shards_partition() {
        for (len, n) in [(10u128, 3u128), (2, 5), (0, 2), (7, 7)] {
            let mut next = 0;
            for k in 0..n {
                let (a, b) = shard_bounds(len, k, n);
                assert_eq!(a, next);
                next = b;
            }
            assert_eq!(next, len);
        }
    }
}
