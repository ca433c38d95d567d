"""Patches under the orthogonal noise model against the same patches written out in the D = 2k + N·P
coordinates: every way the trainer slices a batch, seen and unseen examples, fresh coordinates."""

from __future__ import annotations

import pytest
import torch

from multiview.inputs import DenseInputs, OrthogonalInputs

N, P, K2 = 6, 3, 4  # training examples, patches, features
D = K2 + N * P
U = 5  # units


def _training_set() -> OrthogonalInputs:
    gen = torch.Generator().manual_seed(0)
    coef = torch.rand(N, P, K2, generator=gen, dtype=torch.float64)
    norm = 0.5 + torch.rand(N, P, generator=gen, dtype=torch.float64)
    return OrthogonalInputs(coef, norm, torch.arange(N), N)


def _explicit(inputs: OrthogonalInputs) -> torch.Tensor:
    """(n, P, D): coefficients on the features, and ‖ξ_p‖ on the column of a seen patch's noise
    (an unseen patch's noise direction is outside the D coordinates)."""
    n = len(inputs)
    X = torch.zeros(n, P, D, dtype=torch.float64)
    X[..., :K2] = inputs.coef
    for i in range(n):
        if inputs.index[i] >= 0:
            for p in range(P):
                X[i, p, K2 + int(inputs.index[i]) * P + p] = inputs.noise_norm[i, p]
    return X


def _weights() -> torch.Tensor:
    return torch.randn(U, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _views() -> dict[str, OrthogonalInputs]:
    full = _training_set()
    mixed = OrthogonalInputs(full.coef[[3, 1, 0]], full.noise_norm[[3, 1, 0]], torch.tensor([3, -1, 0]), N)
    unseen = OrthogonalInputs(full.coef[:4], full.noise_norm[:4], torch.full((4,), -1), N)
    return {
        "whole set": full,
        "a slice": full[2:5],
        "a slice of a slice": full[1:6][1:4],
        "a mini-batch": full[torch.tensor([4, 1, 2])],
        "a mini-batch with an example twice": full[torch.tensor([4, 1, 4])],
        "seen and unseen": mixed,
        "unseen, first seen": OrthogonalInputs(
            full.coef[[0, 2]], full.noise_norm[[0, 2]], torch.tensor([-1, 2]), N
        ),
        "unseen": unseen,
    }


@pytest.mark.parametrize("name", list(_views()))
def test_products_equal_those_of_the_written_out_patches(name):
    inputs = _views()[name]
    X = _explicit(inputs).reshape(-1, D)
    W = _weights()
    assert inputs.dim == D
    assert torch.allclose(inputs.preactivations(W), W @ X.T, rtol=1e-13, atol=1e-14)
    slope = torch.randn(U, X.shape[0], generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = slope @ X
    grad = inputs.weight_grad(slope.clone())
    assert grad.shape == (U, D) and grad.dtype == torch.float64
    assert torch.allclose(grad, expected, rtol=1e-13, atol=1e-14)


def _one_feature_set() -> OrthogonalInputs:
    """A training set built as the paper's: each patch carries at most one feature (some none)."""
    gen = torch.Generator().manual_seed(5)
    which = torch.randint(0, K2, (N, P), generator=gen)
    value = torch.rand(N, P, generator=gen, dtype=torch.float64) * (torch.rand(N, P, generator=gen) < 0.7)
    coef = torch.zeros(N, P, K2, dtype=torch.float64).scatter_(-1, which.unsqueeze(-1), value.unsqueeze(-1))
    norm = 0.5 + torch.rand(N, P, generator=gen, dtype=torch.float64)
    return OrthogonalInputs(coef, norm, torch.arange(N), N)


def test_the_one_feature_of_each_patch_is_found_and_kept_by_slices():
    full = _one_feature_set()
    assert full.feature is not None and full.feature_value is not None
    assert torch.equal(full.coef.gather(-1, full.feature.unsqueeze(-1)).squeeze(-1), full.feature_value)
    assert torch.equal((full.coef != 0).sum(-1) == 1, full.feature_value != 0)
    for part, rows in ((full[1:4], [1, 2, 3]), (full[torch.tensor([5, 0])], [5, 0])):
        assert torch.equal(part.feature, full.feature[rows])
        assert torch.equal(part.feature_value, full.feature_value[rows])
    # a slice takes the slices of both, not searched again from its coefficients
    part = full[1:4]
    assert part.feature.untyped_storage().data_ptr() == full.feature.untyped_storage().data_ptr()
    assert part.feature_value.untyped_storage().data_ptr() == full.feature_value.untyped_storage().data_ptr()
    assert _training_set().feature is None  # every patch on every feature: the product is kept


def test_a_patch_with_two_features_keeps_the_product():
    """One patch carrying two features is enough for ``feature`` to stay None: a gather of one
    coordinate per patch would drop the second."""
    full = _one_feature_set()
    coef = full.coef.clone()
    coef[2, 1, :2] = torch.tensor([0.25, 0.5], dtype=torch.float64)
    two = OrthogonalInputs(coef, full.noise_norm, full.index, N)
    assert two.feature is None and two.feature_value is None
    W = _weights()
    assert torch.allclose(two.preactivations(W), W @ _explicit(two).reshape(-1, D).T, rtol=1e-13, atol=1e-14)


def test_a_feature_without_its_values_is_not_used():
    """Given ``feature`` without ``feature_value``: the product is taken, and a slice or a batch
    finds both from its coefficients again."""
    full = _one_feature_set()
    half = OrthogonalInputs(full.coef, full.noise_norm, full.index, N, feature=full.feature)
    assert half.feature_value is None
    W = _weights()
    assert torch.allclose(
        half.preactivations(W), W @ _explicit(half).reshape(-1, D).T, rtol=1e-13, atol=1e-14
    )
    for part, rows in ((half[1:4], [1, 2, 3]), (half[torch.tensor([5, 0])], [5, 0])):
        assert torch.equal(part.feature, full.feature[rows])
        assert torch.equal(part.feature_value, full.feature_value[rows])


@pytest.mark.parametrize("rows", [slice(None), slice(2, 5), [4, 1, 4]])
def test_a_gathered_feature_part_gives_the_numbers_of_the_product(rows):
    """One coordinate per patch times its coefficient is the product of 2k terms of which all
    but one are 0, number for number; the product is used where a patch has two features."""
    full = _one_feature_set()
    inputs = full[rows] if isinstance(rows, slice) else full[torch.tensor(rows)]
    W = _weights()
    gathered = inputs.preactivations(W)
    inputs.feature = inputs.feature_value = None
    assert torch.equal(gathered, inputs.preactivations(W))
    assert torch.allclose(gathered, W @ _explicit(inputs).reshape(-1, D).T, rtol=1e-13, atol=1e-14)


def test_the_product_is_kept_under_bf16_products(monkeypatch):
    from multiview import inputs as inputs_module

    calls = []
    monkeypatch.setattr(inputs_module.precision, "exact_products", lambda: False)
    monkeypatch.setattr(inputs_module, "mm", lambda a, b: calls.append(1) or a @ b)
    full = _one_feature_set()
    W = _weights()
    assert torch.allclose(full.preactivations(W), W @ _explicit(full).reshape(-1, D).T, rtol=1e-13)
    assert calls == [1]


def test_the_feature_part_is_gathered_under_exact_products(monkeypatch):
    """Each patch on at most one feature and products in the run's dtype: no product is taken."""
    from multiview import inputs as inputs_module

    calls = []
    monkeypatch.setattr(inputs_module, "mm", lambda a, b: calls.append(1) or a @ b)
    full = _one_feature_set()
    W = _weights()
    assert torch.allclose(full.preactivations(W), W @ _explicit(full).reshape(-1, D).T, rtol=1e-13)
    assert calls == []
    full.preactivations(W, out=torch.empty(U, N * P, dtype=torch.float64))
    assert calls == []


def test_preactivations_into_a_buffer():
    for full in (_one_feature_set(), _training_set()):
        W = _weights()
        out = torch.full((U, N * P), float("nan"), dtype=torch.float64)
        assert full.preactivations(W, out=out) is out
        assert torch.equal(out, full.preactivations(W))


def test_dense_preactivations_into_a_buffer():
    dense = DenseInputs(_explicit(_training_set()))
    W = _weights()
    out = torch.full((U, N * P), float("nan"), dtype=torch.float64)
    assert dense.preactivations(W, out=out) is out
    assert torch.equal(out, W @ dense.X.reshape(-1, D).T)


def test_gradients_of_chunks_written_into_a_reused_buffer_equal_the_whole_pass():
    """A pass over the training set in chunks, each writing its own noise columns and adding its
    feature part, into a buffer holding the previous step's numbers, gives the whole gradient."""
    full = _training_set()
    slope = torch.randn(U, N * P, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    whole = full.weight_grad(slope.clone())
    buffer = torch.full((U, D), 7.0, dtype=torch.float64)  # stale numbers everywhere
    for i, (a, b) in enumerate(((0, 2), (2, 5), (5, 6))):
        out = full[a:b].weight_grad(slope[:, a * P : b * P].clone(), buffer, accumulate=i > 0)
        assert out is buffer
    assert torch.allclose(buffer, whole, rtol=1e-13, atol=1e-14)
    # without ``accumulate`` the feature columns are overwritten as well
    assert full.weight_grad(slope.clone(), buffer) is buffer
    assert torch.allclose(buffer, whole, rtol=1e-13, atol=1e-14)
    dense = DenseInputs(_explicit(full))
    into = torch.full((U, D), 7.0, dtype=torch.float64)
    dense[0:2].weight_grad(slope[:, : 2 * P].clone(), into)
    dense[2:6].weight_grad(slope[:, 2 * P :].clone(), into, accumulate=True)
    assert torch.allclose(into, whole, rtol=1e-13, atol=1e-14)


def test_a_run_of_examples_leaves_the_other_noise_columns_at_zero(monkeypatch):
    """The gradient of consecutive training examples (a slice of W's noise columns) that start at
    the first or end at the last is 0 in the columns of the other examples, whatever memory it
    is made in: here ``torch.empty`` hands out NaN. Only all of them write every column."""
    real_empty = torch.empty

    def stale(*args, **kwargs):
        t = real_empty(*args, **kwargs)
        return t.fill_(float("nan")) if t.is_floating_point() else t

    full = _training_set()
    monkeypatch.setattr(torch, "empty", stale)
    for part in (full[0:2], full[3:6], full[2:5], full):
        X = _explicit(part).reshape(-1, D)
        slope = torch.randn(U, X.shape[0], generator=torch.Generator().manual_seed(7), dtype=torch.float64)
        grad = part.weight_grad(slope.clone())
        assert torch.allclose(grad, slope @ X, rtol=1e-13, atol=1e-14), part.index.tolist()


def test_dense_inputs_are_the_plain_products():
    X = torch.randn(4, P, 7, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    W = torch.randn(U, 7, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    dense = DenseInputs(X)
    assert torch.equal(dense.preactivations(W, 0.7, 3), W @ X.reshape(-1, 7).T)  # no fresh coordinates
    slope = torch.randn(U, 4 * P, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert torch.allclose(dense.weight_grad(slope), slope @ X.reshape(-1, 7))
    assert dense[1:3].X.shape == (2, P, 7) and len(dense) == 4 and dense.n_patches == P


def test_slices_and_index_tensors_keep_the_examples_and_their_offset():
    full = _training_set()
    assert full[2:5].offset == 2 and full[:3].offset == 0 and full[1:6][1:4].offset == 2
    batch = full[torch.tensor([4, 1, 2])]
    assert batch.offset == 4 and batch.index.tolist() == [4, 1, 2]
    assert torch.equal(batch.coef, full.coef[[4, 1, 2]]) and torch.equal(
        batch.noise_norm, full.noise_norm[[4, 1, 2]]
    )
    assert full[2:5][torch.tensor([2, 0])].offset == 2 + 2
    empty = full[3:][torch.tensor([], dtype=torch.long)]
    assert len(empty) == 0 and empty.offset == 3
    part = full[2:5]
    assert part.n_train == N and part.index.tolist() == [2, 3, 4] and part.n_patches == P


def test_consecutive_training_examples_read_their_noise_columns_as_one_slice():
    """The usual case (the whole training set, or a run of consecutive examples, one example
    included) takes a slice of W, so the products read W without gathering it."""
    full = _training_set()
    W = _weights()
    for part, first, n in ((full, 0, N), (full[2:5], 2, 3), (full[4:5], 4, 1), (full[0:1], 0, 1)):
        cols, seen = part._noise_columns()
        assert cols == slice(K2 + first * P, K2 + (first + n) * P) and seen.all()
        coords = part.noise_coordinates(W, 0.0, 0)
        assert coords.data_ptr() == W[:, cols].data_ptr()  # a view of W
        expected = W @ _explicit(part).reshape(-1, D).T
        assert torch.allclose(part.preactivations(W), expected, rtol=1e-13, atol=1e-14)
    shuffled = full[torch.tensor([1, 0])]
    cols, _ = shuffled._noise_columns()
    assert cols.tolist() == [K2 + P + p for p in range(P)] + [K2 + p for p in range(P)]


# --- fresh coordinates ----------------------------------------------------------------------------


def _fresh(inputs: OrthogonalInputs, W: torch.Tensor, std: float, key: int) -> torch.Tensor:
    """The coordinates drawn for the noise of the unseen patches: (pre(σ) − pre(0)) / ‖ξ_p‖."""
    return (
        inputs.preactivations(W, std, key) - inputs.preactivations(W, 0.0, key)
    ) / inputs.noise_norm.reshape(1, -1)


def test_fresh_coordinates_only_on_unseen_patches_with_the_initial_law():
    full = _training_set()
    coef = full.coef.repeat(200, 1, 1)
    norm = full.noise_norm.repeat(200, 1)
    index = torch.tensor([-1, 0] * (len(coef) // 2))  # alternately unseen and the first example
    inputs = OrthogonalInputs(coef, norm, index, N, fresh_key=2)
    W = _weights()
    fresh = _fresh(inputs, W, 0.5, 3).view(U, -1, P)
    assert torch.all(fresh[:, 1::2] == 0)  # seen: the weight's own coordinate, nothing drawn
    drawn = fresh[:, 0::2]
    assert float(drawn.mean()) == pytest.approx(0.0, abs=0.03)
    assert float(drawn.std()) == pytest.approx(0.5, rel=0.05)
    assert not torch.allclose(drawn[0], drawn[1])  # every unit has its own
    assert torch.equal(inputs.preactivations(W), inputs.preactivations(W, 0.0, 0))  # by default none


def test_fresh_coordinates_are_keyed_by_learner_batch_and_chunk():
    full = _training_set()
    unseen = OrthogonalInputs(full.coef, full.noise_norm, torch.full((N,), -1), N, fresh_key=2)
    W = _weights()
    base = _fresh(unseen, W, 1.0, 3)
    assert torch.equal(base, _fresh(unseen, W, 1.0, 3))  # reproducible
    assert not torch.allclose(base, _fresh(unseen, W, 1.0, 4))  # another learner
    other_batch = OrthogonalInputs(full.coef, full.noise_norm, torch.full((N,), -1), N, fresh_key=5)
    assert not torch.allclose(base, _fresh(other_batch, W, 1.0, 3))
    assert not torch.allclose(_fresh(unseen[0:3], W, 1.0, 3), _fresh(unseen[3:6], W, 1.0, 3))  # chunks
    # the draws themselves, pinned (a position-weighted sum)
    flat = base.flatten()
    weights = 1 + torch.arange(flat.numel(), dtype=torch.float64) / flat.numel()
    assert float((flat * weights).sum()) == pytest.approx(PINNED_FRESH, rel=1e-12)
    unseen32 = OrthogonalInputs(
        full.coef.float(), full.noise_norm.float(), torch.full((N,), -1), N, fresh_key=2
    )
    assert unseen32.preactivations(W.float(), 1.0, 3).dtype == torch.float32


PINNED_FRESH = 17.191278995711144


# --- the device of the inputs ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(_views()))
def test_products_stay_on_the_device_of_the_inputs(name, same_on_meta_default):
    """Every index, column and output is made next to the inputs, not on the default device:
    under a meta default device the products are those of the CPU."""
    inputs = _views()[name]
    W = _weights()
    slope = torch.randn(U, len(inputs) * P, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    same_on_meta_default(lambda: inputs._noise_columns())
    same_on_meta_default(lambda: inputs.noise_coordinates(W, 0.5, 3))
    same_on_meta_default(lambda: inputs.preactivations(W, 0.5, 3))
    same_on_meta_default(lambda: inputs.weight_grad(slope.clone()))


@pytest.mark.parametrize("name", ["seen and unseen", "unseen"])
def test_fresh_coordinates_are_moved_to_the_weights_device(name, one_device):
    """The fresh coordinates are drawn on the CPU (their generator's device) and moved to the
    weights' device before they are returned or written next to the seen ones: with weights on
    the meta device the coordinates are meta too."""
    inputs = _views()[name]
    with one_device():
        coords = inputs.noise_coordinates(_weights().to("meta"), 0.5, 3)
    assert coords.device.type == "meta" and coords.shape == (U, len(inputs) * P)


def test_the_noise_columns_are_worked_out_once_per_inputs_object():
    """``_noise_columns`` is kept on the object (its tensors never change); a slice is a new
    object with its own."""
    from multiview.config import DataConfig
    from multiview.data import MultiViewDistribution

    cfg = DataConfig(k=3, d=24, P=4, n_train=9, sigma_p=0.1, s=1.0, C_p=1, noise_model="orthogonal")
    dist = MultiViewDistribution(cfg, seed=0)
    inputs = dist.inputs(dist.sample(9, "train"), seen=True)
    cols = inputs._noise_columns()
    assert inputs._noise_columns() is cols and cols[0] == slice(6, 6 + 36)
    part = inputs[3:5]
    assert part._columns is None and part._noise_columns()[0] == slice(6 + 12, 6 + 20)
    assert inputs._noise_columns() is cols


def test_fresh_coordinates_of_weights_that_start_at_zero_are_zeros_drawn_from_nothing(monkeypatch):
    """``fresh_std`` 0 (the NTK's Δ′): the coordinates on unseen noise directions are 0, the
    numbers a draw times 0 gives, without the draw."""
    from multiview.config import DataConfig
    from multiview.data import MultiViewDistribution

    cfg = DataConfig(k=3, d=24, P=4, n_train=9, sigma_p=0.1, s=1.0, C_p=1, noise_model="orthogonal")
    dist = MultiViewDistribution(cfg, seed=0)
    unseen = dist.inputs(dist.sample(5, "test"), seen=False)
    W = torch.randn(7, unseen.dim, generator=torch.Generator().manual_seed(1))
    drawn = unseen.noise_coordinates(W, 0.3, 11)
    assert drawn.shape == (7, 20) and bool((drawn != 0).all())

    def no_draw(*args, **kwargs):
        raise AssertionError("no draw for fresh_std 0")

    monkeypatch.setattr(torch, "randn", no_draw)
    zero = unseen.noise_coordinates(W, 0.0, 11)
    assert torch.equal(zero, torch.zeros(7, 20)) and torch.equal(zero, drawn * 0)


@pytest.mark.parametrize("name", list(_views()))
def test_all_seen_says_whether_every_example_is_a_training_example(name):
    inputs = _views()[name]
    assert inputs.all_seen == bool((inputs.index >= 0).all())
    assert inputs.all_seen == (name not in ("seen and unseen", "unseen, first seen", "unseen"))
    assert inputs[0:1].all_seen == bool(inputs.index[0] >= 0)  # a part works it out anew
