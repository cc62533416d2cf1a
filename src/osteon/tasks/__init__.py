"""Task plug-ins (classify, grade, regress); registration by explicit import."""

from osteon.tasks import classify as _classify  # noqa: F401
from osteon.tasks import detect as _detect  # noqa: F401
from osteon.tasks import grade as _grade  # noqa: F401
from osteon.tasks import keypoints as _keypoints  # noqa: F401
from osteon.tasks import multitask as _multitask  # noqa: F401
from osteon.tasks import regress as _regress  # noqa: F401
from osteon.tasks import segment as _segment  # noqa: F401
from osteon.tasks import segment3d as _segment3d  # noqa: F401
from osteon.tasks import slices as _slices  # noqa: F401  (2.5D classification of series)
from osteon.tasks import study as _study  # noqa: F401  (multiview, bilateral)
from osteon.tasks import tiled as _tiled  # noqa: F401  (full-resolution classification from tiles)
from osteon.tasks.base import TASKS, ClassPrediction, GradePrediction, Task, TaskState, ValuePrediction, build_task

__all__ = ["TASKS", "ClassPrediction", "GradePrediction", "Task", "TaskState", "ValuePrediction", "build_task"]
