"""The ML contracts as pydantic v2 models: :class:`SpecialistReport`, :class:`Experience`,
:class:`Insight`, :class:`AdaptationPlan` (actions ``hpo``, ``reweight_specialists``,
``policy_delta``, ``canary``), :class:`GovernanceSnapshot` and :class:`MLTSnapshot`, and the
payloads of the ML kernel's ten events (``contracts/ml/ml_events.json``, registered as
``ml.event.<name>``: :class:`ExperienceIngested` ... :class:`RollbackCompleted`).

They mirror the ``$defs`` of ``contracts/ml/ml_schemas.json`` (registered as ``mlt.experience``,
``mlt.insight``, ``mlt.adaptation_plan``, ``ml.specialist_report``, ``governance.snapshot``,
``mlt.snapshot``) in strict mode: no coercion, no unknown field. A test runs every valid and
invalid example of ``contracts/ml/examples`` through both the models and the JSON Schema and
requires the same verdict. ``model_validate`` raises ``pydantic.ValidationError`` on a
violation; ``to_json()`` gives the wire form (absent fields left out).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

SemVer = Annotated[str, StringConstraints(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")]
UID = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{4,64}$")]
ISO8601 = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]"
        r":([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|\+00:00)$"
    ),
]
Sha256 = Annotated[str, StringConstraints(pattern=r"^sha256:[a-f0-9]{64}$")]
Uri = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9+.-]*://\S+$", max_length=2048)]
Probability = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]
PolicyPath = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$", max_length=256)
]

Task = Literal["classification", "regression", "clustering", "dimred", "rl"]
MetricName = Literal[
    "accuracy", "f1", "auroc", "logloss", "calibration",
    "rmse", "mae", "r2", "mape",
    "silhouette", "davies_bouldin",
    "explained_variance",
    "episode_return", "stability",
]  # fmt: skip
Metrics = dict[MetricName, float]
Environment = Literal["dev", "staging", "prod"]
RiskLevel = Literal["low", "medium", "high"]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    def to_json(self) -> dict[str, Any]:
        """The wire form: JSON types, absent optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Artifact(_Contract):
    """A stored artifact referenced by URI and digest."""

    uri: Uri
    sha256: Sha256
    kind: Literal["model", "report", "plot", "dataset", "other"] | None = None
    size_bytes: Annotated[int, Field(ge=0)] | None = None


class DatasetRef(_Contract):
    """A dataset version, referenced by UID and pinned by digest."""

    dataset_id: UID
    version: SemVer
    rows: Annotated[int, Field(ge=0)] | None = None
    sha256: Sha256 | None = None


class Candidate(_Contract):
    """One model a specialist considered, with its validation metrics."""

    model_key: UID
    metrics: Metrics
    params: dict[str, Any] | None = None
    selected: bool = False


class Risk(_Contract):
    """A risk a specialist sees."""

    kind: Literal[
        "overfitting", "data_leakage", "drift", "fairness", "calibration", "latency",
        "compliance", "other",
    ]  # fmt: skip
    level: RiskLevel
    detail: Annotated[str, StringConstraints(max_length=2000)] | None = None


class SpecialistReport(_Contract):
    """Model-selection output of one ML specialist (``ml.specialist_report``)."""

    report_id: UID
    specialist: UID
    version: SemVer | None = None
    task: Task
    candidates: Annotated[list[Candidate], Field(min_length=1)]
    artifacts: list[Artifact] | None = None
    metrics: Metrics
    risks: list[Risk] | None = None
    feature_importance: dict[Annotated[str, StringConstraints(min_length=1, max_length=256)], float] | None = None
    dataset: DatasetRef
    notes: Annotated[str, StringConstraints(max_length=4000)] | None = None
    timestamp: ISO8601


class ExperienceContext(_Contract):
    """Where an experience happened."""

    dataset_id: UID | None = None
    model_key: UID | None = None
    model_version: SemVer | None = None
    env: Environment


class Latency(_Contract):
    """Latency percentiles in milliseconds."""

    p50_ms: NonNegative | None = None
    p95_ms: NonNegative
    p99_ms: NonNegative | None = None


class Drift(_Contract):
    """Drift scores."""

    psi: NonNegative | None = None
    ks: Probability | None = None
    features: dict[str, NonNegative] | None = None


class Fairness(_Contract):
    """Fairness deltas between protected groups."""

    demographic_parity_delta: Probability | None = None
    equalized_odds_delta: Probability | None = None
    groups: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] | None = None


class Compliance(_Contract):
    """Compliance checks."""

    passed: bool
    violations: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] | None = None


class Signals(_Contract):
    """What was observed."""

    metrics: Metrics
    drift: Drift | None = None
    fairness: Fairness | None = None
    latency: Latency | None = None
    compliance: Compliance | None = None


class Experience(_Contract):
    """One piece of training or inference telemetry fed to the MLT kernel (``mlt.experience``)."""

    experience_id: UID
    source: Literal["training", "inference", "evaluation", "monitoring", "governance", "comms"]
    task: Task
    context: ExperienceContext
    signals: Signals
    ground_truth_lag_s: NonNegative | None = None
    timestamp: ISO8601


class Evidence(_Contract):
    """An experience an insight rests on."""

    experience_id: UID
    metric: MetricName | None = None
    value: float | None = None
    baseline: float | None = None


class Recommendation(_Contract):
    """What an insight recommends."""

    action: Literal["hpo", "reweight_specialists", "policy_delta", "canary", "rollback", "none"]
    rationale: Annotated[str, StringConstraints(max_length=2000)] | None = None


class Insight(_Contract):
    """A finding derived from experiences (``mlt.insight``)."""

    insight_id: UID
    type: Literal[
        "performance", "drift", "fairness", "calibration", "latency", "stability", "governance"
    ]
    scope: Literal["global", "task", "model", "specialist", "dataset"]
    target: UID | None = None
    evidence: Annotated[list[Evidence], Field(min_length=1)]
    confidence: Probability
    recommendation: Recommendation
    timestamp: ISO8601


class HpoBudget(_Contract):
    """How much an HPO run may spend."""

    trials: Annotated[int, Field(ge=1, le=10000)]
    max_hours: Annotated[float, Field(gt=0)] | None = None


class HpoAction(_Contract):
    """Hyper-parameter optimisation of one model within a budget."""

    type: Literal["hpo"]
    target: UID
    budget: HpoBudget
    success_metric: MetricName


class ReweightSpecialistsAction(_Contract):
    """New ensemble weights per specialist."""

    type: Literal["reweight_specialists"]
    weights: Annotated[dict[UID, Probability], Field(min_length=1)]


Scalar = Union[float, str, bool, None]


class PolicyDeltaAction(_Contract):
    """Change of one policy value from its current value to a new one."""

    type: Literal["policy_delta"]
    path: PolicyPath
    from_: Scalar = Field(alias="from")
    to: Scalar

    def to_json(self) -> dict[str, Any]:
        # `from` and `to` may be null on purpose: they are required, never left out
        out = super().to_json()
        out.setdefault("from", None)
        out.setdefault("to", None)
        return out


class CanaryAction(_Contract):
    """Gradual rollout: traffic percentages in increasing order, at most 100."""

    type: Literal["canary"]
    target_model: UID
    steps: Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(min_length=1, max_length=20)]

    @field_validator("steps")
    @classmethod
    def _unique(cls, steps: list[int]) -> list[int]:
        if len(set(steps)) != len(steps):
            raise ValueError("steps must be unique")
        return steps


AdaptationAction = Annotated[
    Union[HpoAction, ReweightSpecialistsAction, PolicyDeltaAction, CanaryAction],
    Field(discriminator="type"),
]


class AdaptationPlan(_Contract):
    """Concrete actions proposed by the MLT kernel (``mlt.adaptation_plan``)."""

    plan_id: UID
    derived_from: list[UID] | None = None
    actions: Annotated[list[AdaptationAction], Field(min_length=1, max_length=32)]
    expected_effect: Metrics | None = None
    risk_level: RiskLevel
    timestamp: ISO8601

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["actions"] = [action.to_json() for action in self.actions]
        return out


class GovernanceThresholds(_Contract):
    """Governance thresholds."""

    min_confidence: Probability | None = None
    min_calibration: Probability | None = None
    fairness_delta_max: Probability | None = None
    drift_psi_max: NonNegative | None = None
    ehi_hitl_threshold: Probability | None = None


class GovernanceSnapshot(_Contract):
    """The governance state at one instant, hash-verified (``governance.snapshot``)."""

    snapshot_id: UID
    version: SemVer
    thresholds: GovernanceThresholds
    policies: dict[PolicyPath, Union[float, str, bool]]
    state_hash: Sha256
    created_at: ISO8601


class MLTSnapshot(_Contract):
    """The MLT kernel state at one instant, hash-verified (``mlt.snapshot``)."""

    snapshot_id: UID
    version: SemVer
    specialist_weights: dict[UID, Probability]
    active_models: dict[UID, SemVer]
    applied_plans: list[UID] | None = None
    state_hash: Sha256
    created_at: ISO8601


# ---- the ML kernel's event payloads (contracts/ml/ml_events.json) ------------------------

Principal = Annotated[
    str, StringConstraints(pattern=r"^(agent|human|service|kernel|group):[A-Za-z0-9_.@-]{1,128}$")
]
RollbackTarget = Literal["governance", "mlt", "model", "comms"]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class GovernanceTarget(_Contract):
    """What governance is asked to validate."""

    kind: Literal["adaptation_plan", "deployment", "rollback", "policy"]
    id: UID


class ExperienceIngested(_Contract):
    """``EXPERIENCE_INGESTED``: the MLT kernel stored an experience."""

    experience_id: UID
    source: Literal["training", "inference", "evaluation", "monitoring", "governance", "comms"]
    task: Task
    ingested_at: ISO8601


class InsightReady(_Contract):
    """``MLT_INSIGHT_READY``: a new insight is available."""

    insight: Insight


class AdaptationPlanProposed(_Contract):
    """``ADAPTATION_PLAN_PROPOSED``: a plan for governance to validate."""

    plan: AdaptationPlan
    requires_approval: bool

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["plan"] = self.plan.to_json()
        return out


class GovernanceValidation(_Contract):
    """``GOVERNANCE_VALIDATION``: governance is asked to validate a target."""

    validation_id: UID
    target: GovernanceTarget
    checks: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]] | None = None
    requested_by: Principal | None = None
    requested_at: ISO8601


class GovernanceApproved(_Contract):
    """``GOVERNANCE_APPROVED``: the target may proceed."""

    validation_id: UID
    target: GovernanceTarget
    approver: Principal
    conditions: list[Annotated[str, StringConstraints(min_length=1, max_length=500)]] | None = None
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None
    decided_at: ISO8601


class GovernanceRejected(_Contract):
    """``GOVERNANCE_REJECTED``: the target must not proceed; at least one reason."""

    validation_id: UID
    target: GovernanceTarget
    approver: Principal
    reasons: Annotated[list[Reason], Field(min_length=1)]
    decided_at: ISO8601


class PlanApplied(_Contract):
    """``MLT_PLAN_APPLIED``: an approved plan was applied."""

    plan_id: UID
    snapshot_before: UID
    applied_actions: Annotated[int, Field(ge=1)]
    applied_at: ISO8601


class ModelDriftAlert(_Contract):
    """``MODEL_DRIFT_ALERT``: a model's drift crossed its threshold."""

    model_key: UID
    measure: Literal["psi", "ks", "feature_psi", "prediction_shift"]
    feature: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    value: NonNegative
    threshold: NonNegative
    severity: Literal["low", "medium", "high", "critical"]
    detected_at: ISO8601


class RollbackRequested(_Contract):
    """``ROLLBACK_REQUESTED``: a model rolls back to a version (``model_key`` and
    ``to_version``), anything else to a snapshot (``to_snapshot``)."""

    rollback_id: UID
    target: RollbackTarget
    to_snapshot: UID | None = None
    model_key: UID | None = None
    to_version: SemVer | None = None
    reason: Reason
    requested_by: Principal
    requested_at: ISO8601

    @model_validator(mode="after")
    def _destination(self) -> RollbackRequested:
        if self.target == "model" and (self.model_key is None or self.to_version is None):
            raise ValueError("a model rollback names model_key and to_version")
        if self.target != "model" and self.to_snapshot is None:
            raise ValueError(f"a {self.target} rollback names to_snapshot")
        return self


class RollbackCompleted(_Contract):
    """``ROLLBACK_COMPLETED``: ``state_hash`` on success, ``error`` on failure."""

    rollback_id: UID
    target: RollbackTarget
    status: Literal["completed", "failed"]
    restored_snapshot: UID | None = None
    state_hash: Sha256 | None = None
    error: Reason | None = None
    completed_at: ISO8601

    @model_validator(mode="after")
    def _outcome(self) -> RollbackCompleted:
        if self.status == "completed" and self.state_hash is None:
            raise ValueError("a completed rollback names its state_hash")
        if self.status == "failed" and self.error is None:
            raise ValueError("a failed rollback names its error")
        return self


#: The registered contract subject of each model (the ``schema`` of an envelope carrying it is
#: ``{subject}@1.0.0``).
CONTRACTS: dict[str, type[_Contract]] = {
    "ml.specialist_report": SpecialistReport,
    "mlt.experience": Experience,
    "mlt.insight": Insight,
    "mlt.adaptation_plan": AdaptationPlan,
    "governance.snapshot": GovernanceSnapshot,
    "mlt.snapshot": MLTSnapshot,
    "ml.event.experience_ingested": ExperienceIngested,
    "ml.event.insight_ready": InsightReady,
    "ml.event.adaptation_plan_proposed": AdaptationPlanProposed,
    "ml.event.governance_validation": GovernanceValidation,
    "ml.event.governance_approved": GovernanceApproved,
    "ml.event.governance_rejected": GovernanceRejected,
    "ml.event.plan_applied": PlanApplied,
    "ml.event.model_drift_alert": ModelDriftAlert,
    "ml.event.rollback_requested": RollbackRequested,
    "ml.event.rollback_completed": RollbackCompleted,
}
