"""An interrupted CIFAR model resumes from its last epoch (weights, optimizer, schedule, data
stream) and ends as the uninterrupted run: the checkpoint a requeued SLURM task picks up."""

from __future__ import annotations

import pytest
import torch
from cifar_helpers import stand_in_arrays

from multiview.cifar import train as train_module
from multiview.cifar.config import build
from multiview.cifar.protocol import run_cifar
from multiview.driver import load_tensors

CFG = build(
    "fast",
    {
        "protocol.stages": ("single",),
        "protocol.seeds": 2,
        "model.fast_width": 4,
        "recipe.epochs": 3,
        "recipe.batch_size": 40,
        "recipe.tta": 0,
    },
)


class Interrupted(Exception):
    pass


def test_an_interrupted_model_resumes_from_its_last_epoch(tmp_path, monkeypatch):
    arrays = stand_in_arrays()
    reference = run_cifar(CFG, "cpu", tmp_path / "whole", arrays=arrays)

    draw = train_module.draw_epoch
    calls = []

    def interrupt_in_the_third_epoch_of_the_second_model(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3 + 3:  # the first model's three epochs, then the second model's third
            raise Interrupted
        return draw(*args, **kwargs)

    monkeypatch.setattr(train_module, "draw_epoch", interrupt_in_the_third_epoch_of_the_second_model)
    out = tmp_path / "interrupted"
    with pytest.raises(Interrupted):
        run_cifar(CFG, "cpu", out, arrays=arrays, epoch_checkpoint_s=0)
    partial = out / "models" / "single" / "001.partial.pt"
    state = load_tensors(partial)["state"]
    assert (state["epoch"], state["step"]) == (2, 6) and "momentum_buffer" in str(state["optimizer"]["state"])
    assert not (out / "models" / "single" / "000.partial.pt").exists()  # removed once the model was saved

    calls.clear()
    monkeypatch.setattr(train_module, "draw_epoch", lambda *a, **k: calls.append(1) or draw(*a, **k))
    resumed = run_cifar(CFG, "cpu", out, resume=True, arrays=arrays, epoch_checkpoint_s=0)
    assert len(calls) == 1  # the first model loaded, the second trained for its last epoch only
    assert not partial.exists()
    for key in ("test_accuracy", "steps", "epochs", "final_train_loss", "train_accuracy"):
        assert resumed["single"][key] == reference["single"][key], key
    for index in ("000", "001"):
        a = load_tensors(tmp_path / "whole" / "models" / "single" / f"{index}.pt")
        b = load_tensors(out / "models" / "single" / f"{index}.pt")
        assert torch.equal(a["test_logits"], b["test_logits"])
        for k, v in a["state_dict"].items():
            assert torch.equal(v, b["state_dict"][k]), k
