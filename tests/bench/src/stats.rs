//! Order statistics over a sample buffer (sorts it in place).

/// Summary of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
pub struct Summary {
    pub n: usize,
    pub min: u64,
    /// The lower median: element `n / 2` of the sorted samples.
    pub median: u64,
    pub p90: u64,
    pub max: u64,
}

/// Sorts `samples` and summarises them. `samples` must not be empty.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
pub fn summarise(samples: &mut [u64]) -> Summary {
    assert!(!samples.is_empty(), "no samples");
    samples.sort_unstable();
    let n = samples.len();
    Summary {
        n,
        min: samples[0],
        median: samples[n / 2],
        p90: samples[(n * 9) / 10],
        max: samples[n - 1],
    }
}

#[cfg(all(test, not(target_os = "none")))]
mod tests {
    use super::*;

    #[test]
    fn odd_and_even() {
        let mut a = [5, 1, 3];
        let s = summarise(&mut a);
        assert_eq!((s.min, s.median, s.max), (1, 3, 5));
        let mut b = [4, 1, 3, 2];
        assert_eq!(summarise(&mut b).median, 3);
    }

    #[test]
    fn outliers_do_not_move_the_median() {
        let mut v = [100u64; 101];
        v[0] = 1_000_000;
        v[1] = 0;
        let s = summarise(&mut v);
        assert_eq!(s.median, 100);
        assert_eq!(s.p90, 100);
    }
}
