import pytest
from typer.testing import CliRunner

from faceleaks.cli.main import app, build_config
from faceleaks.config import ExperimentConfig, config_from_dict, load_config, quick_config
from faceleaks.errors import ConfigError


def test_defaults_and_quick_are_valid():
    assert ExperimentConfig().attack.ks == (1, 2, 5, 10)
    q = quick_config()
    assert q.split.n_members < ExperimentConfig().split.n_members


def test_unknown_settings_raise(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting"):
        config_from_dict({"teacher": {"epochz": 3}})
    with pytest.raises(ConfigError, match="unknown teacher kind 'vgg'"):
        config_from_dict({"teacher": {"kind": "vgg"}})
    with pytest.raises(ConfigError, match="unknown output"):
        config_from_dict({"attack": {"output": "logits"}})
    with pytest.raises(ConfigError, match="positive"):
        config_from_dict({"attack": {"ks": [0, 2]}})
    p = tmp_path / "c.toml"
    p.write_text("seed = 3\n[attack]\nks = [2, 5]\n")
    cfg = load_config(p)
    assert cfg.seed == 3 and cfg.attack.ks == (2, 5)
    p.write_text("[nonsense]\nx = 1\n")
    with pytest.raises(ConfigError):
        load_config(p)


def test_cli_config_precedence(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("seed = 3\n")
    cfg = build_config(quick=True, config=p, overrides={"seed": 9})
    assert cfg.seed == 9 and cfg.split == quick_config().split


def test_cli_unknown_setting_exits_2():
    result = CliRunner().invoke(app, ["run", "--teacher", "vgg", "--no-progress"])
    assert result.exit_code == 2
    assert "unknown teacher kind" in result.output
    result = CliRunner().invoke(app, ["run", "--k", "1,x"])
    assert result.exit_code == 2


def test_cli_missing_data_exits_1(tmp_path):
    result = CliRunner().invoke(app, ["run", "--quick", "--lfw-dir", str(tmp_path), "--no-download",
                                      "--out", str(tmp_path / "o"), "--no-progress"])
    assert result.exit_code == 1
    assert "DataError" in result.output and "holds no LFW photos" in result.output


def test_k_beyond_the_photo_cap_is_refused_up_front():
    with pytest.raises(ConfigError, match="k=50"):
        config_from_dict({"attack": {"ks": [1, 50]}})
    result = CliRunner().invoke(app, ["run", "--k", "2,50", "--no-progress"])
    assert result.exit_code == 2 and "k=50" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["run", "--seeds", "0,,1", "--no-progress"])
    assert result.exit_code == 2 and "--seeds" in result.output


@pytest.mark.parametrize("n", [1, 2, -1])
def test_too_few_shadow_teachers_are_refused_up_front(n):
    with pytest.raises(ConfigError, match="--shadows"):
        config_from_dict({"attack": {"n_shadow_teachers": n}})
    assert config_from_dict({"attack": {"n_shadow_teachers": 3}}).attack.n_shadow_teachers == 3
    result = CliRunner().invoke(app, ["run", "--shadows", str(n), "--no-progress"])
    assert result.exit_code == 2 and ">= 3" in " ".join(result.output.split())


@pytest.mark.parametrize("toml, message", [
    ('seed = "three"', "seed must be an integer"),
    ("seed = 1.7", "seed must be an integer"),
    ("[attack]\nks = 5", "attack.ks must be a list"),
    ('[runtime]\nprogress = "yes"', "runtime.progress must be true or false"),
    ("[split]\nn_members = 2.5", "split.n_members must be an integer"),
])
def test_wrong_types_in_a_config_file_are_one_line_errors(tmp_path, toml, message):
    path = tmp_path / "c.toml"
    path.write_text(toml + "\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--no-progress"])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_union_and_number_settings_still_accept_their_kinds():
    cfg = config_from_dict({"attributes": {"identity_budget": 50, "budgets": [1, 50, "all"]},
                            "split": {"member_train_fraction": 0.4}, "teacher": {"finetune_learning_rate": 1}})
    assert cfg.attributes.identity_budget == 50 and cfg.teacher.finetune_learning_rate == 1


def test_cli_error_keeps_the_section_name_in_brackets(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[attack]\nn_shadow = 5\n")
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--no-progress"])
    assert result.exit_code == 2 and "in [attack]" in result.output  # not eaten as rich markup


def test_recipes_are_named_settings_with_overrides_and_are_recorded_resolved(tmp_path):
    assert ExperimentConfig().teacher.resolved_recipe.name == "regularised"  # the default of `run`
    reg = ExperimentConfig().teacher.resolved_recipe
    assert (reg.schedule, reg.learning_rate, reg.epochs, reg.weight_decay, reg.photos) == \
        ("cosine", 3e-4, 20, 5e-4, "half")
    path = tmp_path / "light.toml"
    path.write_text('[teacher]\nrecipe = "light"\n')
    light = load_config(path, quick_config())  # over a preset: the preset's values do not pin the recipe
    r = light.teacher.resolved_recipe
    assert (r.name, r.schedule, r.learning_rate, r.epochs, r.weight_decay, r.photos) == \
        ("light", "constant", 1e-4, 10, 0.0, "all")
    path.write_text('[teacher]\nrecipe = "light"\nfinetune_epochs = 4\nfinetune_schedule = "cosine"\n')
    mixed = load_config(path).teacher
    assert (mixed.resolved_recipe.epochs, mixed.resolved_recipe.schedule, mixed.resolved_recipe.photos) == \
        (4, "cosine", "all")
    recorded = load_config(path).to_dict()["teacher"]
    assert {k: recorded[k] for k in ("recipe", "finetune_schedule", "finetune_learning_rate", "finetune_epochs",
                                     "finetune_weight_decay", "train_photos")} == {
        "recipe": "light", "finetune_schedule": "cosine", "finetune_learning_rate": 1e-4, "finetune_epochs": 4,
        "finetune_weight_decay": 0.0, "train_photos": "all"}
    # the recorded config reads back to the same teacher
    assert config_from_dict({"teacher": recorded}).teacher.resolved_recipe == mixed.resolved_recipe


@pytest.mark.parametrize("teacher, message", [
    ({"recipe": "heavy"}, "unknown teacher recipe 'heavy'"),
    ({"finetune_schedule": "linear"}, "finetune_schedule must be one of"),
    ({"train_photos": "most"}, "train_photos must be one of"),
    ({"finetune_epochs": 0}, "finetune_epochs must be a positive integer"),
    ({"finetune_learning_rate": 0}, "finetune_learning_rate must be a finite positive number"),
    ({"finetune_weight_decay": -1e-4}, "finetune_weight_decay must be a finite number >= 0"),
    ({"finetune_learning_rate": "fast"}, "finetune_learning_rate must be a finite positive number"),
    ({"unfreeze_last_n": -1}, "unfreeze_last_n must be an integer >= 0"),
    ({"unfreeze_last_n": 1.5}, "unfreeze_last_n must be an integer"),
])
def test_bad_recipe_settings_are_refused(teacher, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"teacher": teacher})


def test_a_head_only_teacher_is_a_setting():
    assert config_from_dict({"teacher": {"unfreeze_last_n": 0}}).teacher.unfreeze_last_n == 0


def test_recipe_name_of_each_teacher_role():
    from faceleaks.config import TeacherConfig

    assert TeacherConfig(recipe="light").recipe_name("victim") == "light"
    assert TeacherConfig(recipe="light").recipe_name("control") == "base"  # --control base: dlib unmodified
    assert TeacherConfig(recipe="light", control="finetuned").recipe_name("control") == "light"
    assert TeacherConfig(kind="dlib-base").recipe_name("control") == "base"


def test_k_cap_counts_held_out_photos_only_when_the_recipe_keeps_some():
    with pytest.raises(ConfigError, match="k=15"):
        config_from_dict({"attack": {"ks": [15]}, "data": {"max_images_per_identity": 20}})
    cfg = config_from_dict({"attack": {"ks": [15]}, "data": {"max_images_per_identity": 20},
                            "teacher": {"recipe": "light"}})
    assert max(cfg.attack.ks) == 15
    with pytest.raises(ConfigError, match="k=25"):
        config_from_dict({"attack": {"ks": [25]}, "data": {"max_images_per_identity": 20},
                          "teacher": {"recipe": "light"}})
