"""The whole CIFAR protocol end to end on a few hundred images, one epoch: the results' schema,
every number recomputed from the saved checkpoints, resume, reproducibility (on the tiny data set
the tests write, ``tiny_data``); and that the fast network learns real CIFAR-10 images (on the real
archive, skipped without it)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from multiview import ensemble as ens
from multiview.cifar import config as cfg_mod
from multiview.cifar.protocol import run_cifar
from multiview.cifar.train import accuracy
from multiview.driver import load_tensors
from multiview.progress import Reporter

S, K_AVG, N_TRAIN, N_TEST = 2, 2, 400, 200
METHODS = ("single", "ensemble", "training_average", "kd", "self_kd", "ensemble_of_kd")


def tiny_config(path, cache, **extra) -> cfg_mod.CifarConfig:
    return cfg_mod.build(
        "fast",
        {
            "data.path": str(path),
            "data.cache_dir": str(cache),
            "train_subset": N_TRAIN,
            "test_subset": N_TEST,
            "seeds": S,
            "epochs": 1,
            "fast_width": 8,
            "batch_size": 50,
            "tta": 1,
            "training_average_K": K_AVG,
            "channel_split_n": [1, 2],
            **extra,
        },
    )


class Recorder(Reporter):
    def __init__(self):
        self.finished = []

    def model_finished(self, stage, index, accuracy, seconds, cached):
        self.finished.append((stage, index, cached))


@pytest.fixture(scope="module")
def run(tiny_arrays, tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cifar-run")
    cfg = tiny_config(*tiny_data)
    rec = Recorder()
    torch.set_num_threads(1)
    results = run_cifar(cfg, "cpu", out, reporter=rec, arrays=tiny_arrays)
    return cfg, out, results, rec


def test_results_json_has_the_schema(run):
    cfg, out, res, _ = run
    saved = json.loads((out / "results.json").read_text())
    assert saved["complete"] is True
    for key in ("config", *METHODS, "channel_split", "overlap", "timing", "environment"):
        assert key in saved, key
    sizes = {"single": S, "ensemble": 1, "training_average": 1, "kd": S, "self_kd": S, "ensemble_of_kd": 1}
    for key, n in sizes.items():
        acc, err = saved[key]["test_accuracy"], saved[key]["test_error"]["all"]
        assert len(acc) == n and len(err) == n, key
        assert all(0.0 <= a <= 1.0 for a in acc)
        assert err == pytest.approx([1 - a for a in acc])
        assert all(math.isclose(a * N_TEST, round(a * N_TEST), abs_tol=1e-6) for a in acc)  # counts of images
    assert saved["ensemble"]["curve"]["K"] == list(range(1, S + 1))
    assert saved["config"]["recipe"]["lr"] == 1.5 and saved["config"]["protocol"]["seeds"] == S
    assert (
        saved["data"]["n_train_used"] == N_TRAIN
        and saved["data"]["train_class_counts"] == [N_TRAIN // 10] * 10
    )
    assert saved["environment"]["device"] == "cpu" and saved["environment"]["precision"] == "float32"
    t = saved["timing"]
    assert set(t["seconds_per_model"]) == {"single", "training_average", "kd", "self_kd", "channel_split"}
    assert all(v > 0 for v in t["seconds_per_model"].values()) and t["total"] > 0
    assert cfg_mod.CifarConfig.load_toml(out / "config.toml").config_hash() == cfg.config_hash()


def test_every_model_has_a_checkpoint_and_the_numbers_follow_from_them(run, tiny_arrays):
    cfg, out, res, _ = run
    idx = np.asarray(res["data"]["test_indices"])
    y = torch.from_numpy(tiny_arrays.test_y[idx])
    counts = {"single": S, "training_average": 1, "kd": S, "self_kd": S, "channel_split": 2 * S}
    logits = {}
    for stage, n in counts.items():
        files = sorted((out / "models" / stage).glob("*.pt"))
        assert len(files) == n, stage
        saved = [load_tensors(f) for f in files]
        logits[stage] = torch.stack([s["test_logits"] for s in saved])
        assert logits[stage].shape == (n, N_TEST, 10)
        for s in saved:
            assert s["record"]["test_accuracy"] == pytest.approx(accuracy(s["test_logits"], y))
    for stage in ("single", "kd", "self_kd", "training_average"):
        assert res[stage]["test_accuracy"] == pytest.approx([accuracy(lg, y) for lg in logits[stage]])
    assert res["ensemble"]["test_accuracy"][0] == pytest.approx(accuracy(ens.combine(logits["single"]), y))
    assert res["ensemble_of_kd"]["test_accuracy"][0] == pytest.approx(accuracy(ens.combine(logits["kd"]), y))
    curve = res["ensemble"]["curve"]["accuracy"]
    assert curve[0] == pytest.approx(np.mean(res["single"]["test_accuracy"]))
    assert curve[-1] == pytest.approx(res["ensemble"]["test_accuracy"][0])
    probs = res["ensemble"]["accuracy_by_combine"]["probs"]
    assert probs == pytest.approx(accuracy(ens.combine(logits["single"], "probs"), y))


def test_training_average_self_kd_and_channel_split_parts(run):
    _, _, res, _ = run
    ta = res["training_average"]
    assert ta["K"] == K_AVG and len(ta["sub_network_accuracy"][0]) == K_AVG
    assert res["self_kd"]["teacher_accuracy"] == res["single"]["test_accuracy"]
    assert res["kd"]["teacher"] == {"members": S, "combine": "logits"}
    assert res["kd"]["t"] == 0.1 and res["kd"]["temperature"] == 4.0
    cs = res["channel_split"]
    assert cs["layer"] == "b" and cs["channels"] == 32 and cs["kept_channels"] == [32, 16]
    assert cs["original"]["test_accuracy"] == res["single"]["test_accuracy"]
    for n in ("1", "2"):
        assert len(cs["single"][n]["test_accuracy"]) == S
        assert 0 <= cs["ensemble"][n]["test_accuracy"] <= 1


def test_overlap_agrees_with_the_accuracies(run, tiny_arrays):
    _, _, res, _ = run
    o = res["overlap"]
    test_idx = set(res["data"]["test_indices"])
    errors = o["single"]["errors"]
    assert errors == [round((1 - a) * N_TEST) for a in res["single"]["test_accuracy"]]
    assert [len(w) for w in o["wrong"]["single"]] == errors
    assert all(set(w) <= test_idx for w in o["wrong"]["single"])
    for w in o["wrong"]["single"]:  # a wrong image is one whose label the model missed: check a few
        assert all(0 <= i < len(tiny_arrays.test_y) for i in w)
    inter = np.asarray(o["single"]["pairwise_intersection"])
    assert np.diag(inter).tolist() == errors
    assert inter[0, 1] == len(set(o["wrong"]["single"][0]) & set(o["wrong"]["single"][1]))
    assert sum(o["single"]["missed_by_count"]) == N_TEST
    assert o["single"]["missed_by_any"] == len(set().union(*map(set, o["wrong"]["single"])))
    ens_wrong = set(o["wrong"]["ensemble"])
    assert (
        o["ensemble"]["errors"] == round((1 - res["ensemble"]["test_accuracy"][0]) * N_TEST) == len(ens_wrong)
    )
    missed = set().union(*map(set, o["wrong"]["single"]))
    assert o["ensemble"]["fixed"] == len(missed - ens_wrong)
    assert o["kd"]["errors"] == [len(w) for w in o["wrong"]["kd"]]
    assert len(o["self_kd"]["teacher_errors_fixed"]) == S


def test_resume_loads_every_model(run, tiny_arrays):
    cfg, out, res, _ = run
    rec = Recorder()
    again = run_cifar(cfg, "cpu", out, resume=True, reporter=rec, arrays=tiny_arrays)
    assert rec.finished and all(cached for _, _, cached in rec.finished)
    assert len(rec.finished) == S + 1 + S + S + 2 * S
    for key in METHODS:
        assert again[key]["test_accuracy"] == res[key]["test_accuracy"]
    assert again["overlap"]["wrong"] == res["overlap"]["wrong"]


def test_a_model_is_determined_by_config_and_seed(run, tiny_arrays, tiny_data, tmp_path):
    cfg, out, res, _ = run
    one = tiny_config(*tiny_data, seeds=1, stages="single")
    rec = Recorder()
    again = run_cifar(one, "cpu", tmp_path, resume=True, reporter=rec, arrays=tiny_arrays)
    assert rec.finished == [("single", 0, False)]  # nothing to resume from in a new folder: trained afresh
    first = load_tensors(out / "models" / "single" / "000.pt")
    second = load_tensors(tmp_path / "models" / "single" / "000.pt")
    assert torch.equal(first["test_logits"], second["test_logits"])
    assert again["single"]["test_accuracy"][0] == res["single"]["test_accuracy"][0]
    changed = tiny_config(*tiny_data, seeds=1, stages="single", lr=1.0)
    rec = Recorder()
    run_cifar(changed, "cpu", tmp_path, resume=True, reporter=rec, arrays=tiny_arrays)
    assert rec.finished == [("single", 0, False)]  # a different recipe does not reuse the checkpoint


def test_students_train_three_times_their_teachers_epochs_and_their_keys_follow(
    run, tiny_arrays, tiny_data, tmp_path
):
    cfg, out, res, _ = run
    steps = res["single"]["steps"][0]
    for stage in ("kd", "self_kd"):  # the default: kd_epochs_factor = 3
        assert res[stage]["epochs"] == [3.0] * S
        assert res[stage]["steps"] == [3 * steps] * S
    assert res["single"]["epochs"] == [1.0] * S
    shutil.copytree(out, tmp_path / "run")
    stages = "single,ensemble,kd,self_kd"
    same = tiny_config(*tiny_data, stages=stages, kd_epochs=3)  # the same epochs, asked for in epochs
    rec = Recorder()
    again = run_cifar(same, "cpu", tmp_path / "run", resume=True, reporter=rec, arrays=tiny_arrays)
    assert all(cached for _, _, cached in rec.finished)
    assert again["kd"]["test_accuracy"] == res["kd"]["test_accuracy"]
    as_long = tiny_config(*tiny_data, stages=stages, kd_epochs_factor=1)
    rec = Recorder()
    again = run_cifar(as_long, "cpu", tmp_path / "run", resume=True, reporter=rec, arrays=tiny_arrays)
    assert rec.finished == [("single", i, True) for i in range(S)] + [
        (stage, i, False) for stage in ("kd", "self_kd") for i in range(S)
    ]  # the teachers are reused, the students retrained
    for stage in ("kd", "self_kd"):
        assert again[stage]["epochs"] == [1.0] * S
        assert again[stage]["steps"] == [steps] * S


def test_a_student_as_long_as_its_teachers_keeps_its_key_without_epochs():
    """Checkpoints saved before the students had their own epochs (no "epochs" in their key) are
    the students of kd_epochs_factor = 1 (or kd_epochs = the recipe's)."""
    from types import SimpleNamespace

    from multiview.cifar.protocol import _student_parts

    def parts(**extra):
        return _student_parts(SimpleNamespace(cfg=cfg_mod.build("fast", {"epochs": 20, **extra})))

    assert parts(kd_epochs_factor=1) == parts(kd_epochs=20) == {"t": 0.1, "T": 4.0}
    assert parts() == parts(kd_epochs=60) == {"t": 0.1, "T": 4.0, "epochs": 60.0}


@pytest.mark.slow
def test_the_fast_network_learns_real_images(real_arrays, real_data_path, real_cache_dir):
    cfg = tiny_config(
        real_data_path,
        real_cache_dir,
        seeds=1,
        stages="single",
        train_subset=2000,
        epochs=4,
        fast_width=16,
        batch_size=100,
        tta=0,
    )
    res = run_cifar(cfg, "cpu", None, arrays=real_arrays)
    assert res["single"]["test_accuracy"][0] > 0.35  # chance is 0.10
