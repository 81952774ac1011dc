//! A small deterministic random number generator, seeded per row.
//!
//! Every generated value is a pure function of `(seed, row, column)`: the
//! generator for a column of a row is [`Rng::for_row`], and a few draws from
//! it give the value. So a table is the same whatever the batch size, the
//! number of partitions, or which columns a query projects.
//!
//! The stream is SplitMix64 (Steele, Lea and Flood, 2014): one add and one
//! mix per draw, good enough statistically for test data and far cheaper than
//! seeding a `rand` generator per row.

/// The golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finalizer: a bijective mix of 64 bits.
#[inline(always)]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 stream.
#[derive(Debug, Clone)]
pub struct Rng {
    /// The state, advanced by [`GAMMA`] per draw.
    state: u64,
}

impl Rng {
    /// The generator of one column (`salt`) of one row (`row`) of a table
    /// seeded with `seed`.
    #[inline(always)]
    pub fn for_row(seed: u64, row: u64, salt: u64) -> Self {
        Self {
            state: mix(seed ^ mix(row.wrapping_mul(GAMMA) ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93))),
        }
    }

    /// A generator for one-off setup (pools), from a seed and a purpose.
    pub fn new(seed: u64, salt: u64) -> Self {
        Self::for_row(seed, u64::MAX, salt)
    }

    /// The next 64 random bits.
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// A number in `0..n` (Lemire's multiply-shift; `n = 0` gives 0).
    #[inline(always)]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `[0, 1)` with 53 random bits.
    #[inline(always)]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p`.
    #[inline(always)]
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_columns_get_independent_streams() {
        let a = Rng::for_row(7, 1, 0).next_u64();
        assert_eq!(a, Rng::for_row(7, 1, 0).next_u64());
        assert_ne!(a, Rng::for_row(7, 2, 0).next_u64());
        assert_ne!(a, Rng::for_row(7, 1, 1).next_u64());
        assert_ne!(a, Rng::for_row(8, 1, 0).next_u64());
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut rng = Rng::new(1, 2);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            let v = rng.below(10);
            counts[v as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert_eq!(rng.below(0), 0);
        let u = rng.unit();
        assert!((0.0..1.0).contains(&u));
    }
}
