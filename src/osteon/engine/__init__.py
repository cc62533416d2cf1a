"""The engine: one Lightning loop around a Task; train, evaluate, predict; the run directory."""

from osteon.engine.config import TaskName, TrainConfig
from osteon.engine.evaluate import evaluate
from osteon.engine.fit import train
from osteon.engine.predictor import Predictor
from osteon.engine.rundir import RunDir

__all__ = ["Predictor", "RunDir", "TaskName", "TrainConfig", "evaluate", "train"]
