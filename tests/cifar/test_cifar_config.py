"""The CIFAR config: recipes, overrides, validation that names the field, TOML round trip."""

from __future__ import annotations

import pytest

from multiview import stages
from multiview.cifar import config as cfg_mod
from multiview.cifar.config import CifarConfig
from multiview.settings import ConfigError, parse_sets


def test_recipes_fill_the_recipe_section():
    paper = cfg_mod.build("paper")
    assert (paper.recipe.lr, paper.recipe.batch_size, paper.recipe.epochs) == (0.1, 128, 200.0)
    assert paper.recipe.schedule == "step" and paper.recipe.milestones == (0.3, 0.6, 0.8)
    fast = cfg_mod.build("fast")
    assert fast.recipe.name == "fast" and fast.recipe.epochs == 10.0 and fast.model.arch == "fast"
    with pytest.raises(ConfigError, match="recipe 'slow' is unknown"):
        cfg_mod.build("slow")


def test_students_train_three_times_their_teachers_epochs_by_default():
    fast = cfg_mod.build("fast")
    assert (fast.protocol.kd_epochs, fast.protocol.kd_epochs_factor) == (0.0, 3.0)
    assert fast.student_epochs == 3 * fast.recipe.epochs == 30.0
    assert cfg_mod.build("fast", {"epochs": 20}).student_epochs == 60.0
    assert cfg_mod.build("fast", {"kd_epochs_factor": 1}).student_epochs == fast.recipe.epochs
    assert cfg_mod.build("fast", {"kd_epochs": 25, "kd_epochs_factor": 2}).student_epochs == 25.0


def test_overrides_bare_and_dotted_and_lists():
    cfg = cfg_mod.build(
        "paper",
        parse_sets(["lr=0.05", "recipe.schedule=cosine", "stages=single,ensemble", "channel_split_n=[1, 2]"]),
    )
    assert cfg.recipe.lr == 0.05 and cfg.recipe.schedule == "cosine"
    assert cfg.protocol.stages == ("single", "ensemble") and cfg.protocol.channel_split_n == (1, 2)
    assert cfg_mod.build("fast", {"arch": "ResNet-28-10"}).model.arch == "wrn-28-10"
    assert cfg_mod.build("fast", {"seed": "3"}).seed == 3


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("lr", -1, "recipe.lr = -1.0: must be in (0.0"),
        ("recipe.momentum", 1.0, "recipe.momentum = 1.0: must be below 1"),
        ("schedule", "linear", "recipe.schedule = 'linear': must be one of step, cosine, triangle, constant"),
        ("milestones", [0.6, 0.3], "recipe.milestones = [0.6, 0.3]: must be increasing"),
        ("batch_size", 0, "recipe.batch_size = 0: must be at least 1"),
        ("batch_size", "many", "recipe.batch_size = 'many': expected an integer"),
        ("flip", "sometimes", "recipe.flip = 'sometimes': expected true or false"),
        ("tta", 3, "recipe.tta = 3: must be one of 0, 1, 2"),
        ("dataset", "mnist", "data.dataset = 'mnist': must be one of cifar10, cifar100"),
        ("labels", "coarse", "data.labels = 'coarse': only cifar100 has coarse labels"),
        (
            "train_subset",
            5,
            "data.train_subset = 5: a class-balanced subset needs at least one image per class",
        ),
        ("arch", "wrn-27-10", "model.arch = 'wrn-27-10'"),
        ("stages", "single,teaching", "protocol.stages = 'teaching': must be one of"),
        ("kd_t", 1.5, "protocol.kd_t = 1.5: must be in [0.0, 1.0]"),
        ("kd_epochs", -1, "protocol.kd_epochs = -1.0: must be in [0.0, ∞)"),
        ("kd_epochs_factor", 0, "protocol.kd_epochs_factor = 0.0: must be in (0.0, ∞)"),
        ("channel_split_n", [0, 2], "protocol.channel_split_n = [0, 2]: a list of integers ≥ 1"),
        ("nonsense", 1, "unknown setting 'nonsense'"),
        ("recipe.nonsense", 1, "unknown setting 'recipe.nonsense'; recipe has: name, epochs"),
    ],
)
def test_bad_values_name_the_field(key, value, message):
    with pytest.raises(ConfigError) as exc:
        cfg_mod.build("fast", {key: value})
    assert message in str(exc.value)


def test_toml_round_trip_and_hash(tmp_path):
    cfg = cfg_mod.build("paper", {"seeds": 4, "lr": 0.07, "data.path": "/x", "channel_split_n": [2, 4]})
    path = tmp_path / "config.toml"
    path.write_text(cfg.to_toml())
    back = CifarConfig.load_toml(path)
    assert back.to_dict() == cfg.to_dict() and back.config_hash() == cfg.config_hash()
    moved = cfg.with_overrides({"data.path": "/elsewhere", "data.cache_dir": "/tmp/c"})
    assert moved.config_hash() == cfg.config_hash()  # where the data lives does not change results
    assert cfg.with_overrides({"seed": 1}).config_hash() != cfg.config_hash()
    (tmp_path / "bad.toml").write_text("[recipe]\nlr = 'fast'\n")
    with pytest.raises(ConfigError, match="recipe.lr = 'fast': expected a number"):
        CifarConfig.load_toml(tmp_path / "bad.toml")


def test_stage_prerequisites_and_counts():
    assert stages.resolve(stages.CIFAR, ["ensemble_of_kd"]) == ["single", "kd", "ensemble_of_kd"]
    assert stages.resolve(stages.CIFAR, ["overlap", "training_average"]) == [
        "single",
        "ensemble",
        "training_average",
        "overlap",
    ]
    p = CifarConfig().protocol
    assert p.K == p.seeds == 10 and p.n_kd_students == 10
    assert (
        cfg_mod.build("fast", {"training_average_K": 3, "channel_split_seeds": 20}).protocol.n_split_seeds
        == 10
    )
