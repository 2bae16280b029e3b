//! The statistics behind the insight rules: the population stability index of two samples over
//! the baseline's deciles, the two-sample Kolmogorov–Smirnov statistic with its asymptotic
//! p-value, and a nearest-rank percentile. Pure functions over slices; no allocation beyond the
//! sorted copies.

/// Proportions below this are raised to it, so an empty bin does not make the PSI infinite.
const PSI_FLOOR: f64 = 1e-4;

/// A sorted copy of `values` (NaN never reaches here: the contracts admit only JSON numbers).
fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `values`; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let v = sorted(values);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// The arithmetic mean; `None` when empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The population stability index of `current` against `baseline`: Σ (c − b)·ln(c / b) over
/// bins cut at the baseline's quantiles (equal cut points merged), each proportion floored at
/// 1e-4. 0 for identical distributions; above 0.2 is the usual "significant shift".
///
/// The bins are one per ten values of the smaller sample, from 2 to 10: the PSI of two samples
/// of one distribution is biased upwards by about (bins − 1)·(1/n + 1/m), so ten bins over ten
/// values each would call noise a shift.
pub fn psi(baseline: &[f64], current: &[f64]) -> f64 {
    if baseline.is_empty() || current.is_empty() {
        return 0.0;
    }
    let bins = (baseline.len().min(current.len()) / 10).clamp(2, 10);
    let base = sorted(baseline);
    let mut edges: Vec<f64> = (1..bins)
        .map(|d| base[(d * base.len() / bins).min(base.len() - 1)])
        .collect();
    edges.dedup();
    let shares = |sample: &[f64]| {
        let mut counts = vec![0usize; edges.len() + 1];
        for x in sample {
            counts[edges.partition_point(|edge| edge <= x)] += 1;
        }
        counts
            .into_iter()
            .map(|c| (c as f64 / sample.len() as f64).max(PSI_FLOOR))
            .collect::<Vec<_>>()
    };
    let (b, c) = (shares(baseline), shares(current));
    b.iter().zip(&c).map(|(b, c)| (c - b) * (c / b).ln()).sum()
}

/// The two-sample Kolmogorov–Smirnov statistic D (the largest gap between the two empirical
/// distribution functions) and its asymptotic p-value (Kolmogorov's series with Stephens'
/// small-sample correction). `(0, 1)` when a sample is empty.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> (f64, f64) {
    if a.is_empty() || b.is_empty() {
        return (0.0, 1.0);
    }
    let (a, b) = (sorted(a), sorted(b));
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let en = (n * m / (n + m)).sqrt();
    (d, kolmogorov_q((en + 0.12 + 0.11 / en) * d))
}

/// Q_KS(λ) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²}, the probability of a gap at least this large
/// under the null hypothesis.
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let k = f64::from(k);
        let term = sign * (-2.0 * k * k * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_sample_when_percentiles_are_taken_then_they_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 95.0), Some(95.0));
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 95.0), None);
    }

    #[test]
    fn given_small_samples_when_binned_then_the_bins_follow_the_smaller_sample() {
        // Ten values each: two bins (the median), so only a shift across it counts.
        let a: Vec<f64> = (0..10).map(f64::from).collect();
        let b: Vec<f64> = (0..10).map(|i| f64::from(i) + 0.5).collect();
        assert!(psi(&a, &b) < 0.2, "{}", psi(&a, &b));
        let shifted: Vec<f64> = a.iter().map(|x| x + 100.0).collect();
        assert!(psi(&a, &shifted) > 1.0);
    }

    #[test]
    fn given_identical_samples_when_compared_then_psi_is_zero_and_ks_finds_nothing() {
        let values: Vec<f64> = (0..200).map(|i| f64::from(i % 37)).collect();
        assert!(psi(&values, &values).abs() < 1e-12);
        let (d, p) = ks_two_sample(&values, &values);
        assert_eq!(d, 0.0);
        assert!(p > 0.99);
    }

    #[test]
    fn given_disjoint_samples_when_compared_then_psi_is_large_and_ks_is_certain() {
        let low: Vec<f64> = (0..100).map(|i| f64::from(i) / 1000.0).collect();
        let high: Vec<f64> = low.iter().map(|x| x + 10.0).collect();
        assert!(psi(&low, &high) > 1.0);
        let (d, p) = ks_two_sample(&low, &high);
        assert_eq!(d, 1.0);
        assert!(p < 1e-6, "{p}");
    }

    #[test]
    fn given_a_known_shift_when_psi_is_computed_then_it_matches_the_hand_count() {
        // Baseline uniform over 10 deciles; current puts everything in the top decile:
        // nine bins of (1e-4 − 0.1)·ln(1e-4/0.1) and one of (1 − 0.1)·ln(1/0.1).
        let baseline: Vec<f64> = (0..100).map(f64::from).collect();
        let current = vec![99.0; 100];
        let expected = 9.0 * (PSI_FLOOR - 0.1) * (PSI_FLOOR / 0.1).ln() + 0.9 * (10.0f64).ln();
        assert!((psi(&baseline, &current) - expected).abs() < 1e-9);
    }
}
