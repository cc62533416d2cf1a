"""Per-task report adapters (see :mod:`osteon.report.kinds.base`), registered by task name on import.

Example:
    >>> from osteon.report.kinds import adapter_for
    >>> adapter_for("detect").monitor_name
    'mAP@0.5'
"""

from osteon.report.kinds import detect, labels, regress, segment
from osteon.report.kinds import keypoints as _keypoints  # noqa: F401  (registers the keypoints adapter)
from osteon.report.kinds import multitask as _multitask  # noqa: F401  (registers the multi-task adapter)
from osteon.report.kinds import slices as _slices  # noqa: F401  (registers the 2.5D series adapter)
from osteon.report.kinds import study as _study  # noqa: F401  (registers the multiview and bilateral adapters)
from osteon.report.kinds import tiled as _tiled  # noqa: F401  (registers the tiled adapter)
from osteon.report.kinds.base import REPORT_KINDS, Bootstrap, ReportKind, adapter_for

__all__ = ["REPORT_KINDS", "Bootstrap", "ReportKind", "adapter_for", "detect", "labels", "regress", "segment"]
