//! A fixed-size latency histogram (log-linear buckets, < 0.4% error), so
//! that millions of requests cost no memory to measure.

/// Values below this are stored exactly.
const LINEAR: u64 = 512;
/// Sub-buckets per power of two above `LINEAR`.
const SUB: u64 = 256;
/// Enough buckets for any `u64`.
const BUCKETS: usize = (64 * SUB + 2 * SUB) as usize;

/// Counts of latencies in microseconds.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let top = 63 - u64::from(v.leading_zeros());
    let shift = top - 8; // v >> shift is in [256, 512)
    (shift * SUB + (v >> shift)) as usize
}

/// The middle of the range of values that land in bucket `i`.
fn value_of(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let shift = i / SUB - 1;
    let m = i - shift * SUB;
    (m << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// Records one value.
    pub(crate) fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// The largest value recorded (exact), or 0.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The `q`-quantile (0..=1), or 0 if empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((self.total as f64 * q).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_of(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_close() {
        let mut last = 0;
        for v in 0..200_000u64 {
            let b = bucket(v);
            assert!(b == last || b == last + 1, "v={v}");
            last = b;
            let back = value_of(b);
            assert!(
                back.abs_diff(v) as f64 <= 1.0 + v as f64 / 256.0,
                "v={v} back={back}"
            );
        }
        assert!(bucket(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), 0);
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.max(), 100);
        h.record(1_000_000);
        let p100 = h.quantile(1.0);
        assert_eq!(p100, 1_000_000);
    }
}
