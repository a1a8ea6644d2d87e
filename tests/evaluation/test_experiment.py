"""Run start: a bad attack name or parameter fails before any data is read or model trained."""

import dataclasses

import pytest

from faceleaks.config import AttackSpec, ExperimentConfig
from faceleaks.errors import ConfigError
from faceleaks.evaluation.experiment import run_experiment


def _with(**attack_or_attributes):
    cfg = ExperimentConfig(output_dir="unused")
    attack = dataclasses.replace(cfg.attack, **attack_or_attributes.get("attack", {}))
    attributes = dataclasses.replace(cfg.attributes, **attack_or_attributes.get("attributes", {}))
    return dataclasses.replace(cfg, attack=attack, attributes=attributes)


@pytest.mark.parametrize("changes, needle", [
    ({"attack": {"membership": (AttackSpec("no-such-attack"),)}}, "no-such-attack"),
    ({"attack": {"membership": (AttackSpec("threshold", {"feature": "max_posterior", "bogus": 1}),)}}, "bogus"),
    ({"attributes": {"attacks": ("oracle",)}}, "oracle"),
])
def test_bad_attack_settings_fail_before_training(tmp_path, changes, needle):
    with pytest.raises(ConfigError, match=needle):
        run_experiment(_with(**changes), out_dir=tmp_path / "out", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
