"""Evaluation metrics as a clinical paper reports them: pure functions over numpy arrays.

Naming: ``*_score`` = higher is better; ``*_error``/``*_loss`` = lower is better; signature
``(y_true, y_score_or_pred, *, options)``. Undefined cases (AUC with one class, PPV with no
predicted positive, ...) return ``nan`` and warn with :class:`UndefinedMetricWarning`; malformed
inputs raise :class:`MetricInputError`.

Families: binary classification (``classification``), multiclass/multilabel (``multiclass``),
ordinal grades (``ordinal``), regression (``regression``), calibration (``calibration``), DeLong's
test (``delong``), detection (``detection``: COCO mAP through pycocotools, FROC; ``detection_compare``:
detectors compared on the same resamples), bootstrap
intervals by patient (``bootstrap_ci``, ``paired_bootstrap_test``) and the
report builders the engine calls (``binary_report``, ``multiclass_report``, ``ordinal_report``,
``regression_report``).
"""

from osteon.metrics._bootstrap import (
    ConfidenceInterval,
    bootstrap_ci,
    bootstrap_resample_counts,
    paired_bootstrap_test,
)
from osteon.metrics._common import MetricInputError, UndefinedMetricWarning
from osteon.metrics.calibration import brier_score_loss, calibration_curve, expected_calibration_error
from osteon.metrics.classification import (
    ThresholdMethod,
    binary_metrics_at_threshold,
    choose_threshold,
    npv_score,
    ppv_score,
    roc_auc_score,
    roc_curve,
    sensitivity_score,
    specificity_score,
)
from osteon.metrics.delong import delong_ci, delong_covariance, delong_test
from osteon.metrics.detection import (
    FROC_RATES,
    coco_map_scores,
    detection_report,
    froc_curve,
    froc_score,
)
from osteon.metrics.detection_compare import (
    DETECTION_STATISTICS,
    ResampledDetectionScores,
    paired_detection_test,
    resampled_detection_scores,
)
from osteon.metrics.multiclass import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    per_class_metrics,
    per_class_roc_auc_score,
    per_label_roc_auc_score,
)
from osteon.metrics.ordinal import (
    linear_weighted_kappa_score,
    mean_absolute_grade_error,
    per_grade_metrics,
    quadratic_weighted_kappa_score,
    within_one_accuracy_score,
)
from osteon.metrics.regression import (
    bland_altman,
    mean_absolute_error,
    pearson_r_score,
    r2_score,
    root_mean_squared_error,
)
from osteon.metrics.report import binary_report, multiclass_report, ordinal_report, regression_report

__all__ = [
    "DETECTION_STATISTICS",
    "FROC_RATES",
    "ConfidenceInterval",
    "MetricInputError",
    "ResampledDetectionScores",
    "ThresholdMethod",
    "UndefinedMetricWarning",
    "accuracy_score",
    "balanced_accuracy_score",
    "binary_metrics_at_threshold",
    "binary_report",
    "bland_altman",
    "bootstrap_ci",
    "bootstrap_resample_counts",
    "brier_score_loss",
    "calibration_curve",
    "choose_threshold",
    "coco_map_scores",
    "confusion_matrix",
    "delong_ci",
    "delong_covariance",
    "delong_test",
    "detection_report",
    "expected_calibration_error",
    "froc_curve",
    "froc_score",
    "linear_weighted_kappa_score",
    "mean_absolute_error",
    "mean_absolute_grade_error",
    "multiclass_report",
    "npv_score",
    "ordinal_report",
    "paired_bootstrap_test",
    "paired_detection_test",
    "pearson_r_score",
    "per_class_metrics",
    "per_class_roc_auc_score",
    "per_grade_metrics",
    "per_label_roc_auc_score",
    "ppv_score",
    "quadratic_weighted_kappa_score",
    "r2_score",
    "regression_report",
    "resampled_detection_scores",
    "roc_auc_score",
    "roc_curve",
    "root_mean_squared_error",
    "sensitivity_score",
    "specificity_score",
    "within_one_accuracy_score",
]
