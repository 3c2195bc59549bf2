//! A small seeded generator (SplitMix64): every random choice of a run is a
//! function of `--seed` and the request id, never of the scheduling.

/// SplitMix64: tiny, fast, and good enough to pick operations.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

/// The SplitMix64 output function, also used to derive per-request seeds.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for the run's own choices (fates of requests).
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(mix(seed ^ 0x5EED_BA70_0000_0001))
    }

    /// The generator of one request (or child): independent of the order in
    /// which requests happen to run.
    pub(crate) fn for_stream(seed: u64, stream: u64) -> Rng {
        Rng(mix(seed.wrapping_add(mix(stream))))
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let mut a = Rng::for_stream(7, 42);
        let mut b = Rng::for_stream(7, 42);
        for _ in 0..1000 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
            let u = a.unit();
            assert_eq!(u, b.unit());
            assert!((0.0..1.0).contains(&u));
        }
    }
}
