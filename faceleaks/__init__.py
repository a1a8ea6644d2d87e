"""faceleaks: what a face-recognition teacher leaks through black-box transfer-learning students.

Implements and extends Liew & Takahashi, "FaceLeaks: Inference Attacks against Transfer
Learning Models via Black-box Queries" (arXiv 2010.14023). The light-weight API is imported
eagerly; ``run_experiment`` (which needs torch) is imported on first use.
"""

from faceleaks.attacks.base import Level, MembershipAttack, MembershipScores, ReferenceSet
from faceleaks.attacks.membership.shadow import ShadowClassifierAttack
from faceleaks.attacks.membership.threshold import ThresholdAttack
from faceleaks.attacks.registry import create_attack, register_attack
from faceleaks.config import ExperimentConfig, load_config, quick_config
from faceleaks.errors import (ArtifactError, ConfigError, DataError, FaceLeaksError, FaceLeaksWarning,
                              NotFittedError, QueryBudgetExceeded, QueryError, UndefinedMetricWarning,
                              UnsupportedOutputError)
from faceleaks.serving.function import FunctionBlackBox
from faceleaks.serving.protocol import BlackBox, OutputKind, QueryResult
from faceleaks.serving.sealed import SealedBlackBox, seal
from faceleaks.serving.wrappers import BudgetedBlackBox, CachingBlackBox, CountingBlackBox

__version__ = "0.1.0"

__all__ = [
    "ArtifactError", "BlackBox", "BudgetedBlackBox", "CachingBlackBox", "ConfigError", "CountingBlackBox",
    "DataError", "ExperimentConfig", "FaceLeaksError", "FaceLeaksWarning", "FunctionBlackBox", "Level",
    "MembershipAttack", "MembershipScores", "NotFittedError", "OutputKind", "QueryBudgetExceeded",
    "QueryError", "QueryResult", "ReferenceSet", "SealedBlackBox", "ShadowClassifierAttack", "ThresholdAttack",
    "UndefinedMetricWarning", "UnsupportedOutputError", "create_attack", "load_config", "quick_config",
    "register_attack", "run_experiment", "seal",
]


def __getattr__(name: str):
    if name == "run_experiment":
        from faceleaks.evaluation.experiment import run_experiment

        return run_experiment
    raise AttributeError(f"module 'faceleaks' has no attribute {name!r}")
