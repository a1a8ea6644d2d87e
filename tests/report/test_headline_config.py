"""report.headline: read from TOML over the defaults, validated, recorded in the run's config."""

import pytest

from faceleaks.config import ExperimentConfig, HeadlineSpec, load_config
from faceleaks.errors import ConfigError
from faceleaks.report.headline import headline_spec


def test_a_partial_headline_table_overrides_the_defaults_and_is_recorded(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[report.headline]\nattack = "lira-online-compactness"\nk = 10\n')
    recorded = load_config(path).to_dict()["report"]["headline"]
    assert recorded == {**HeadlineSpec().__dict__, "attack": "lira-online-compactness", "k": 10}
    assert headline_spec(load_config(path).to_dict()) == (HeadlineSpec("lira-online-compactness", k=10), True)


@pytest.mark.parametrize("table, match", [('kk = 1', "unknown setting"), ('level = "photo"', "level"),
                                          ('k = 0', "positive integer"), ('setting = "all"', "setting")])
def test_a_bad_headline_is_a_config_error_naming_the_value(tmp_path, table, match):
    path = tmp_path / "run.toml"
    path.write_text(f"[report.headline]\n{table}\n")
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_a_config_without_report_falls_back_to_the_default_and_says_so():
    config = ExperimentConfig().to_dict()
    del config["report"]
    assert headline_spec(config) == (HeadlineSpec(), False)
    assert HeadlineSpec(level="instance", attack="max_posterior").row_name == "max_posterior"
