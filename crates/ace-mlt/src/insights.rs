//! The insight rules, pure: given a series' baseline and current windows (see
//! [`crate::store::Windows`]) and the experience just stored, which conditions hold and what
//! each finding says. The kernel raises an insight when a condition starts to hold and closes it
//! when it stops, so a lasting condition is one insight, not one per experience.
//!
//! | rule | signal | holds when | confidence |
//! |---|---|---|---|
//! | drift | each metric of `signals.metrics` | PSI(current ‖ baseline) ≥ `drift_psi_max` and KS p < 0.01 | 1 − p of the two-sample KS test |
//! | latency | `signals.latency.p95_ms` | p95(current) > `latency_regression_ratio` × p95(baseline) and KS p < 0.01 | 1 − p of the KS test |
//! | fairness | `signals.fairness.*_delta` | mean(current) > `fairness_delta_max` | share of current experiences above the bound |
//! | compliance | `signals.compliance.passed` | this experience failed | 1 (an observed fact) |
//!
//! Windowed rules run only once the series holds both windows without overlap, and a signal
//! needs at least ten values in each window.

use serde_json::{Value, json};

use crate::config::MltConfig;
use crate::stats;
use crate::store::Windows;

/// Values of a signal needed in each window before a rule judges it.
const MIN_VALUES: usize = 10;
/// A windowed rule also needs the two-sample KS test to reject "same distribution" at this
/// level, so a large statistic from a handful of noisy values is not called a change.
pub const SIGNIFICANCE: f64 = 0.01;
/// Experiences quoted as evidence.
const EVIDENCE: usize = 5;

/// The series an experience belongs to: what its insights are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// `model` or `task`.
    pub scope: &'static str,
    /// The model key, or `task_<task>` (a UID either way).
    pub target: String,
}

impl Series {
    /// The series of `experience`: its model when it names one, else its task.
    pub fn of(experience: &Value) -> Series {
        match experience["context"]["model_key"].as_str() {
            Some(model) => Series {
                scope: "model",
                target: model.to_owned(),
            },
            None => Series {
                scope: "task",
                target: format!("task_{}", experience["task"].as_str().unwrap_or("unknown")),
            },
        }
    }
}

/// A finding: the insight's content (the kernel adds id and timestamp) and, for drift of a
/// model, the alert's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The condition's key (`drift:<target>:<metric>`); `None` for one-off flags.
    pub key: Option<String>,
    /// `type`, `scope`, `target`, `evidence`, `confidence`, `recommendation`.
    pub insight: Value,
    /// `measure`, `feature`, `value`, `threshold`, `severity` of a `MODEL_DRIFT_ALERT`.
    pub drift: Option<Value>,
}

/// What the rules found for one new experience.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Evaluation {
    /// Conditions that hold, with their findings.
    pub holding: Vec<Finding>,
    /// Keys of windowed conditions that were judged and do not hold.
    pub clear: Vec<String>,
}

/// Runs every rule.
pub fn evaluate(
    config: &MltConfig,
    series: &Series,
    experience: &Value,
    windows: &Windows,
) -> Evaluation {
    let mut out = Evaluation::default();
    compliance(series, experience, &mut out);
    let full = (config.baseline_window + config.current_window) as u64;
    if windows.total >= full {
        drift(config, series, windows, &mut out);
        latency(config, series, windows, &mut out);
        fairness(config, series, windows, &mut out);
    }
    out
}

/// The values of `path` (a JSON pointer) in `docs`, with their experience ids.
fn signal(docs: &[Value], path: &str) -> Vec<(String, f64)> {
    docs.iter()
        .filter_map(|d| {
            let v = d.pointer(path)?.as_f64()?;
            Some((d["experience_id"].as_str()?.to_owned(), v))
        })
        .collect()
}

fn values(pairs: &[(String, f64)]) -> Vec<f64> {
    pairs.iter().map(|(_, v)| *v).collect()
}

/// The last experiences of the current window as evidence against `baseline`.
fn evidence(current: &[(String, f64)], metric: Option<&str>, baseline: f64) -> Vec<Value> {
    current
        .iter()
        .rev()
        .take(EVIDENCE)
        .map(|(id, value)| {
            let mut e = json!({"experience_id": id, "value": value, "baseline": baseline});
            if let Some(metric) = metric {
                e["metric"] = json!(metric);
            }
            e
        })
        .collect()
}

fn insight(
    kind: &str,
    series: &Series,
    evidence: Vec<Value>,
    confidence: f64,
    action: &str,
    why: String,
) -> Value {
    json!({
        "type": kind,
        "scope": series.scope,
        "target": series.target,
        "evidence": Value::Array(evidence),
        "confidence": confidence.clamp(0.0, 1.0),
        "recommendation": {"action": action, "rationale": Value::String(why)},
    })
}

fn judge(out: &mut Evaluation, key: String, finding: Option<(Value, Option<Value>)>) {
    match finding {
        Some((insight, drift)) => out.holding.push(Finding {
            key: Some(key),
            insight,
            drift,
        }),
        None => out.clear.push(key),
    }
}

fn drift(config: &MltConfig, series: &Series, w: &Windows, out: &mut Evaluation) {
    let mut metrics: Vec<String> = w
        .current
        .iter()
        .filter_map(|d| d["signals"]["metrics"].as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    metrics.sort();
    metrics.dedup();
    for metric in metrics {
        let path = format!("/signals/metrics/{metric}");
        let (base, cur) = (signal(&w.baseline, &path), signal(&w.current, &path));
        if base.len() < MIN_VALUES || cur.len() < MIN_VALUES {
            continue;
        }
        let (b, c) = (values(&base), values(&cur));
        let psi = stats::psi(&b, &c);
        let (_, p) = stats::ks_two_sample(&b, &c);
        let key = format!("drift:{}:{metric}", series.target);
        let finding = (psi >= config.drift_psi_max && p < SIGNIFICANCE).then(|| {
            let baseline = stats::mean(&b).unwrap_or_default();
            let why = format!(
                "{metric} shifted from its baseline window: PSI {psi:.3} >= {}",
                config.drift_psi_max
            );
            let ins = insight(
                "drift",
                series,
                evidence(&cur, Some(&metric), baseline),
                1.0 - p,
                "hpo",
                why,
            );
            let ratio = psi / config.drift_psi_max;
            let severity = match ratio {
                r if r >= 4.0 => "critical",
                r if r >= 2.0 => "high",
                _ => "medium",
            };
            let alert = (series.scope == "model").then(|| {
                json!({"measure": "psi", "feature": metric, "value": psi,
                       "threshold": config.drift_psi_max, "severity": severity})
            });
            (ins, alert)
        });
        judge(out, key, finding);
    }
}

fn latency(config: &MltConfig, series: &Series, w: &Windows, out: &mut Evaluation) {
    let path = "/signals/latency/p95_ms";
    let (base, cur) = (signal(&w.baseline, path), signal(&w.current, path));
    if base.len() < MIN_VALUES || cur.len() < MIN_VALUES {
        return;
    }
    let (b, c) = (values(&base), values(&cur));
    let (Some(bp), Some(cp)) = (stats::percentile(&b, 95.0), stats::percentile(&c, 95.0)) else {
        return;
    };
    let (_, p) = stats::ks_two_sample(&b, &c);
    let key = format!("latency:{}:p95_ms", series.target);
    let finding = (cp > bp * config.latency_regression_ratio && p < SIGNIFICANCE).then(|| {
        let why = format!(
            "p95 latency {cp:.1} ms against a baseline of {bp:.1} ms (more than {}x)",
            config.latency_regression_ratio
        );
        (
            insight(
                "latency",
                series,
                evidence(&cur, None, bp),
                1.0 - p,
                "rollback",
                why,
            ),
            None,
        )
    });
    judge(out, key, finding);
}

fn fairness(config: &MltConfig, series: &Series, w: &Windows, out: &mut Evaluation) {
    for measure in ["demographic_parity_delta", "equalized_odds_delta"] {
        let path = format!("/signals/fairness/{measure}");
        let cur = signal(&w.current, &path);
        if cur.len() < MIN_VALUES {
            continue;
        }
        let c = values(&cur);
        let mean = stats::mean(&c).unwrap_or_default();
        let key = format!("fairness:{}:{measure}", series.target);
        let finding = (mean > config.fairness_delta_max).then(|| {
            let above = c.iter().filter(|v| **v > config.fairness_delta_max).count();
            let share = above as f64 / c.len() as f64;
            let why = format!(
                "mean {measure} {mean:.3} over the last {} experiences exceeds {}",
                c.len(),
                config.fairness_delta_max
            );
            let ev = evidence(&cur, None, config.fairness_delta_max);
            (
                insight("fairness", series, ev, share, "policy_delta", why),
                None,
            )
        });
        judge(out, key, finding);
    }
}

fn compliance(series: &Series, experience: &Value, out: &mut Evaluation) {
    let compliance = &experience["signals"]["compliance"];
    if compliance["passed"] != json!(false) {
        return;
    }
    let violations: Vec<&str> = compliance["violations"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let id = experience["experience_id"].as_str().unwrap_or_default();
    let why = if violations.is_empty() {
        "a compliance check failed".to_owned()
    } else {
        format!("compliance violations: {}", violations.join(", "))
    };
    out.holding.push(Finding {
        key: None,
        insight: insight(
            "governance",
            series,
            vec![json!({"experience_id": id})],
            1.0,
            "rollback",
            why,
        ),
        drift: None,
    });
}
