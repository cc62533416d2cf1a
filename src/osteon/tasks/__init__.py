"""Task plug-ins (classify, grade, regress); registration by explicit import."""

from osteon.tasks import classify as _classify  # noqa: F401
from osteon.tasks import detect as _detect  # noqa: F401
from osteon.tasks import grade as _grade  # noqa: F401
from osteon.tasks import regress as _regress  # noqa: F401
from osteon.tasks import segment as _segment  # noqa: F401
from osteon.tasks.base import TASKS, ClassPrediction, GradePrediction, Task, TaskState, ValuePrediction, build_task

__all__ = ["TASKS", "ClassPrediction", "GradePrediction", "Task", "TaskState", "ValuePrediction", "build_task"]
