//! [`MltConfig`]: the thresholds of the insight rules, the windows they compare, and the EHI
//! score of a plan by its risk level. Plain data with defaults; the server reads it from its
//! `mlt` configuration section and calls [`MltConfig::validate`].

use serde::{Deserialize, Serialize};

/// The ML kernel's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MltConfig {
    /// How many of a series' first experiences form its baseline window.
    pub baseline_window: usize,
    /// How many of a series' latest experiences are compared with the baseline.
    pub current_window: usize,
    /// Population stability index of a metric, current window against baseline, from which the
    /// metric has drifted (0.2 is the usual "significant shift").
    pub drift_psi_max: f64,
    /// The current window's p95 latency over the baseline's, from which latency regressed.
    pub latency_regression_ratio: f64,
    /// Mean demographic-parity or equalized-odds gap of the current window above which a
    /// fairness insight is raised.
    pub fairness_delta_max: f64,
    /// EHI score a plan carries by its `risk_level`.
    pub ehi_by_risk: EhiByRisk,
    /// Score at or above which a plan is held for a human's approval.
    pub ehi_hitl_threshold: f64,
    /// Where the kernel keeps its data.
    pub store: StoreKind,
    /// The PostgreSQL store (`store: postgres`).
    pub postgres: PostgresConfig,
}

/// Which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// `mlt.redb` under the data directory.
    #[default]
    Embedded,
    /// PostgreSQL, with `contracts/ml/ml_database_schema.sql` as migration 1.
    Postgres,
}

/// The PostgreSQL store's connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// `postgres://user@host:port/db` (no TLS).
    pub url: String,
    /// The schema holding the kernel's tables (created if missing).
    pub schema: String,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: String::new(),
            schema: "ace_mlt".to_owned(),
        }
    }
}

/// The EHI score of each risk level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EhiByRisk {
    /// `risk_level: low`.
    pub low: f64,
    /// `risk_level: medium`.
    pub medium: f64,
    /// `risk_level: high`.
    pub high: f64,
}

impl Default for MltConfig {
    fn default() -> Self {
        MltConfig {
            baseline_window: 50,
            current_window: 50,
            drift_psi_max: 0.2,
            latency_regression_ratio: 1.2,
            fairness_delta_max: 0.1,
            ehi_by_risk: EhiByRisk {
                low: 0.2,
                medium: 0.5,
                high: 0.9,
            },
            ehi_hitl_threshold: 0.7,
            store: StoreKind::Embedded,
            postgres: PostgresConfig::default(),
        }
    }
}

impl MltConfig {
    /// The EHI score of a plan of `risk_level` (`low`, `medium`, anything else as `high`).
    pub fn ehi_of(&self, risk_level: &str) -> f64 {
        match risk_level {
            "low" => self.ehi_by_risk.low,
            "medium" => self.ehi_by_risk.medium,
            _ => self.ehi_by_risk.high,
        }
    }

    /// Checks every value, naming the first key at fault (relative to the `mlt` section).
    pub fn validate(&self) -> Result<(), String> {
        if self.baseline_window < 10 || self.current_window < 10 {
            return Err("baseline_window and current_window must be at least 10".to_owned());
        }
        let probabilities = [
            ("fairness_delta_max", self.fairness_delta_max),
            ("ehi_hitl_threshold", self.ehi_hitl_threshold),
            ("ehi_by_risk.low", self.ehi_by_risk.low),
            ("ehi_by_risk.medium", self.ehi_by_risk.medium),
            ("ehi_by_risk.high", self.ehi_by_risk.high),
        ];
        for (key, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("{key} must be within [0, 1], not {value}"));
            }
        }
        if self.drift_psi_max.is_nan() || self.drift_psi_max <= 0.0 {
            return Err("drift_psi_max must be above 0".to_owned());
        }
        if self.latency_regression_ratio.is_nan() || self.latency_regression_ratio <= 1.0 {
            return Err("latency_regression_ratio must be above 1".to_owned());
        }
        if self.store == StoreKind::Postgres && self.postgres.url.is_empty() {
            return Err("postgres.url must be set when store is postgres".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_defaults_when_validated_then_they_pass() {
        assert_eq!(MltConfig::default().validate(), Ok(()));
    }

    #[test]
    fn given_a_threshold_outside_its_range_when_validated_then_its_key_is_named() {
        let config = MltConfig {
            ehi_hitl_threshold: 1.5,
            ..MltConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("ehi_hitl_threshold")
        );
        let config = MltConfig {
            latency_regression_ratio: 0.9,
            ..MltConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("latency_regression_ratio")
        );
    }
}
