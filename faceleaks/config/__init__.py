"""Typed, validated settings for a faceleaks run.

Every knob lives in a frozen dataclass, validated once in ``__post_init__``; the CLI builds one
``ExperimentConfig`` (defaults, ``--quick`` preset, an optional TOML file, command-line
overrides) and each layer receives only its own slice. Unknown keys raise ``ConfigError``.

Modules: ``sections`` (data, split, teacher, students, runtime), ``privacy`` (the teacher's training defences), ``attack`` (membership attack
specs, attack settings, the attribute study), ``experiment`` (the whole run, reading and presets).
"""

from faceleaks.config.attack import DEFAULT_MEMBERSHIP_ATTACKS, AttackConfig, AttackSpec, AttributeConfig
from faceleaks.config.report import HeadlineSpec, ReportConfig
from faceleaks.config.experiment import ExperimentConfig, config_from_dict, load_config, quick_config
from faceleaks.config.privacy import PrivacyConfig
from faceleaks.config.sections import (CONTROL_KINDS, OUTPUT_KINDS, TEACHER_KINDS, DataConfig, RuntimeConfig,
                                       SplitConfig, StudentConfig, TeacherConfig)

__all__ = [
    "DataConfig",
    "SplitConfig",
    "TeacherConfig",
    "PrivacyConfig",
    "StudentConfig",
    "AttackConfig",
    "AttackSpec",
    "DEFAULT_MEMBERSHIP_ATTACKS",
    "AttributeConfig",
    "RuntimeConfig",
    "ReportConfig",
    "HeadlineSpec",
    "ExperimentConfig",
    "TEACHER_KINDS",
    "CONTROL_KINDS",
    "OUTPUT_KINDS",
    "quick_config",
    "config_from_dict",
    "load_config",
]
