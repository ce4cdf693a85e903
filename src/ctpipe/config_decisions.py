"""The config sections that judge and serve a trained model: evaluation (metric, slices), the
gate, promotion (approval by jurisdiction) and live monitoring (automatic rollback).

Re-exported by ctpipe.config, which assembles them into UseCaseConfig.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from ctpipe.config_validation import StrictModel as _Strict


class EvaluationConfig(_Strict):
    metric: str = Field(description="A metric registered in ctpipe.metrics: wape, mae, rmse "
                        "(regression); pr_auc, roc_auc, recall_at_budget (binary).")
    alert_budget: float = Field(0.01, gt=0, lt=1, description="Share of rows alerted (fraud).")
    slices: list[str] = []
    min_slice_rows: int = Field(30, ge=1)

    @model_validator(mode="after")
    def _known_metric(self) -> EvaluationConfig:
        from ctpipe.metrics import get_metric  # numpy only; sklearn is imported when scoring

        try:
            get_metric(self.metric)
        except ValueError as exc:
            raise ValueError(f"metric: {exc}") from None
        return self


class GateConfig(_Strict):
    floor: float = Field(description="Absolute bound the challenger must meet (max for "
                         "lower-is-better metrics, min for higher-is-better).")
    min_improvement: float = Field(0.01, ge=0, description="Relative margin over the champion.")
    follow_up_improvement: float = Field(
        0.0, ge=0, description="Relative margin over a champion that is still learning a "
        "change, for a challenger that learns the same change from more of its batches (a "
        "follow-up, or any retrain while the champion's follow-ups are open): it saw more of "
        "the new regime, so matching the champion on the holdout is enough (default 0; set it "
        "to min_improvement to judge these like any challenger).")
    slice_tolerance: float = Field(
        0.10, ge=0, description="Relative worsening allowed per slice (default 10 %); a slice "
        "worse by more vetoes only if it is also significantly worse (slice_confidence).")
    slice_confidence: float = Field(
        0.95, gt=0.5, lt=1, description="Confidence that a slice is really worse before it may "
        "veto: the one-sided upper bootstrap bound of the slice's relative gain must be below 0 "
        "(default 0.95).")
    slice_resamples: int = Field(
        300, ge=50, le=5000, description="Paired bootstrap resamples per slice that is worse "
        "than slice_tolerance (default 300); seeded, so a decision is reproducible.")
    slice_override_gain: float | None = Field(
        0.25, gt=0, description="A challenger at least this much better overall (relative "
        "gain, default 25 %) is promoted although a slice is significantly worse: the champion "
        "is then the worse model for most rows (typically after a shift); the gate check and "
        "artifact name the overridden slices. null: a significantly worse slice always vetoes.")


class PromotionConfig(_Strict):
    approval_jurisdictions: list[str] = Field(
        default_factory=list, description="Jurisdictions that require human approval."
    )
    jurisdiction: str | None = Field(None, description="Where this model is deployed.")
    approval_timeout_seconds: int = Field(
        86400, ge=1, description="An approval not given within this time rejects the promotion.")

    @property
    def requires_approval(self) -> bool:
        return self.jurisdiction is not None and self.jurisdiction in self.approval_jurisdictions


class MonitoringConfig(_Strict):
    rollback_after: int = Field(3, ge=1, description="Consecutive labelled batches the champion "
                                "must be bad on before an automatic rollback.")
    rollback_margin: float = Field(0.05, ge=0, description="Relative margin by which the "
                                   "previous champion's shadow score must beat the champion's "
                                   "live metric for a batch to count as bad.")
    automatic_rollback: bool = Field(True, description="Roll back by itself on confirmed live "
                                     "degradation; false: record the verdict only.")
    recent_batches: int = Field(14, ge=1, description="Batches `ctpipe monitor` shows.")
