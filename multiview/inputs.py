"""How patches meet weights: the two representations of a batch's patches.

Every learner computes pre-activations ⟨w, x_p⟩ for all patches and neurons in one product and
the weight gradient Σ_p slope_p·x_p in another. Both go through an *inputs* object:

* :class:`DenseInputs` holds the patches X (n, P, d) explicitly (``noise_model = "gaussian"``):
  the paper's construction at a finite d, where the Gaussian noise vectors overlap each other and
  the features by O(1/√d).
* :class:`OrthogonalInputs` (``noise_model = "orthogonal"``) is the d → ∞ limit at a fixed noise
  norm: every noise vector ξ_p is orthogonal to the 2k features and to every other noise vector.
  A patch is then x_p = Σ_f c_{p,f}·v_f + ‖ξ_p‖·e_p with e_p its own unit direction, and a weight
  only needs its 2k feature coordinates and one coordinate per *training* patch:
  w ∈ R^D, D = 2k + N·P (columns ``[0, 2k)`` features, ``2k + n·P + p`` the noise of training
  patch (n, p)). A patch never seen in training (a test patch) has a fresh direction, on which
  every weight still has its initial Gaussian coordinate N(0, σ²); those coordinates are drawn
  when needed from a generator keyed by the batch and the chunk.

Shapes: weights are flattened to W (U, D) with U = R·k·m units; pre-activations are (U, n·P),
unit-major, so that a unit's coordinates on the noise of consecutive patches are contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from multiview import precision
from multiview.precision import mm, thin_product
from multiview.seeding import derive_seed


@dataclass
class DenseInputs:
    """Explicit patches X (n, P, d)."""

    X: Tensor

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape)

    @property
    def n_patches(self) -> int:
        return int(self.X.shape[1])

    def __getitem__(self, index: Tensor | slice) -> DenseInputs:
        return DenseInputs(self.X[index])

    def preactivations(
        self, W: Tensor, fresh_std: float = 0.0, fresh_key: int = 0, out: Tensor | None = None
    ) -> Tensor:
        """(U, n·P) = W @ Xᵀ for W (U, d), written into ``out`` when given."""
        pre = mm(W, self.X.reshape(-1, self.X.shape[-1]).T)
        return pre if out is None else out.copy_(pre)

    def weight_grad(self, slope: Tensor, out: Tensor | None = None, accumulate: bool = False) -> Tensor:
        """(U, d) = slope @ X for slope (U, n·P); written into ``out`` (U, d) when given, or added
        to it with ``accumulate``."""
        part = mm(slope, self.X.reshape(-1, self.X.shape[-1]))
        if out is None:
            return part
        return out.add_(part) if accumulate else out.copy_(part)


@dataclass
class OrthogonalInputs:
    """Patches in the d → ∞ limit: feature coefficients, noise norms and noise identities.

    ``coef`` (n, P, 2k) coefficients on the features (z_p on the patch's own feature plus α);
    ``noise_norm`` (n, P) ‖ξ_p‖; ``index`` (n,) position of each example in the training set, or
    −1 for examples whose noise no weight has ever seen; ``n_train`` the training-set size N
    (fixing D = 2k + N·P); ``fresh_key`` and ``offset`` (the first example's position in its
    batch) make the fresh initial coordinates reproducible.
    """

    coef: Tensor
    noise_norm: Tensor
    index: Tensor
    n_train: int
    fresh_key: int = 0
    offset: int = 0
    feature: Tensor | None = field(default=None, repr=False)
    feature_value: Tensor | None = field(default=None, repr=False)
    _columns: tuple[slice | Tensor | None, Tensor] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _coef_t: Tensor | None = field(default=None, init=False, repr=False, compare=False)
    _all_seen: bool | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """``feature`` (n, P): the one feature each patch carries and ``feature_value`` (n, P) its
        coefficient (0 for a patch without one), when no patch carries two, as the paper's
        construction guarantees (:mod:`multiview.data`); otherwise both stay None."""
        if self.feature is None and bool(((self.coef != 0).sum(-1) <= 1).all()):
            self.feature = self.coef.abs().argmax(-1)
            self.feature_value = self.coef.gather(-1, self.feature.unsqueeze(-1)).squeeze(-1)

    def __len__(self) -> int:
        return int(self.coef.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.coef.shape)

    @property
    def n_patches(self) -> int:
        return int(self.coef.shape[1])

    @property
    def dim(self) -> int:
        """D = 2k + N·P."""
        return self.coef.shape[2] + self.n_train * self.coef.shape[1]

    def __getitem__(self, index: Tensor | slice) -> OrthogonalInputs:
        if isinstance(index, slice):
            start = index.start or 0
        else:
            start = int(index[0]) if index.numel() else 0
        single = self.feature is not None and self.feature_value is not None
        return replace(
            self,
            coef=self.coef[index],
            noise_norm=self.noise_norm[index],
            index=self.index[index],
            offset=self.offset + start,
            feature=self.feature[index] if single else None,
            feature_value=self.feature_value[index] if single else None,
        )

    @property
    def all_seen(self) -> bool:
        """Whether every example is a training example (no ``index`` of −1): its noise is among
        the weights' coordinates. Worked out once per object."""
        if self._all_seen is None:
            self._all_seen = bool((self.index >= 0).all())
        return self._all_seen

    def _noise_columns(self) -> tuple[slice | Tensor | None, Tensor]:
        """Where each patch's own noise coordinate lives in W: a slice when the examples are
        consecutive training examples (the usual case), else an index tensor (−1 for fresh),
        and the (n·P,) mask of patches whose noise was seen in training. Worked out once per
        object (its tensors are never changed in place)."""
        if self._columns is None:
            self._columns = self._find_noise_columns()
        return self._columns

    def _find_noise_columns(self) -> tuple[slice | Tensor | None, Tensor]:
        n, P = self.noise_norm.shape
        k2 = self.coef.shape[2]
        seen = (self.index >= 0)[:, None].expand(n, P).reshape(-1)
        if not bool(seen.any()):
            return None, seen
        first = int(self.index[0])
        if first >= 0 and bool(
            (self.index == torch.arange(first, first + n, device=self.index.device)).all()
        ):
            return slice(k2 + first * P, k2 + (first + n) * P), seen
        cols = k2 + self.index[:, None] * P + torch.arange(P, device=self.index.device)
        return torch.where(self.index[:, None] >= 0, cols, torch.full_like(cols, -1)).reshape(-1), seen

    def noise_coordinates(self, W: Tensor, fresh_std: float, fresh_key: int) -> Tensor:
        """(U, n·P): each unit's coordinate on each patch's noise direction e_p. Coordinates on
        fresh directions are N(0, ``fresh_std``²), drawn from a generator keyed by ``fresh_key``
        (the learner's), the batch's ``fresh_key`` and the chunk's offset."""
        cols, seen = self._noise_columns()
        if isinstance(cols, slice):
            return W[:, cols]
        out = torch.empty(W.shape[0], seen.numel(), dtype=W.dtype, device=W.device)
        if cols is not None and bool(seen.any()):
            out[:, seen] = W[:, cols[seen]]
        if not bool(seen.all()):
            shape = (W.shape[0], int((~seen).sum()))
            if fresh_std == 0:  # weights that start at 0 (the NTK's Δ′): nothing to draw
                fresh = torch.zeros(shape, dtype=W.dtype, device=W.device)
            else:
                gen = torch.Generator().manual_seed(
                    derive_seed(fresh_key, self.fresh_key, self.offset, W.shape[0])
                )
                fresh = torch.randn(shape, generator=gen, dtype=W.dtype, device="cpu").mul_(fresh_std)
            if bool(seen.any()):
                out[:, ~seen] = fresh.to(W.device)
            else:
                out = fresh.to(W.device)
        return out

    def preactivations(
        self, W: Tensor, fresh_std: float = 0.0, fresh_key: int = 0, out: Tensor | None = None
    ) -> Tensor:
        """(U, n·P) = W[:, :2k] @ Cᵀ + ‖ξ_p‖·W[:, col(p)] for W (U, D), written into ``out``
        (U, n·P) when given.

        When each patch carries at most one feature (``feature``), the feature part is a gather of
        one coordinate per patch times its coefficient instead of a product with 2k terms of
        which all but one are 0: the same numbers, without the product's 2k multiply-adds per
        entry (kept under ``train.matmul = "bf16"``, whose rounding it would undo).
        """
        k2 = self.coef.shape[2]
        noise = self.noise_coordinates(W, fresh_std, fresh_key)
        norm = self.noise_norm.reshape(1, -1)
        if self.feature is None or self.feature_value is None or not precision.exact_products():
            features = mm(W[:, :k2], self.coef.reshape(-1, k2).T)
            return (
                torch.addcmul(features, noise, norm)
                if out is None
                else torch.addcmul(features, noise, norm, out=out)
            )
        pre = torch.index_select(W[:, :k2], 1, self.feature.reshape(-1), out=out)
        return pre.mul_(self.feature_value.reshape(1, -1)).addcmul_(noise, norm)

    def weight_grad(self, slope: Tensor, out: Tensor | None = None, accumulate: bool = False) -> Tensor:
        """(U, D): slope @ C in the feature columns, slope·‖ξ_p‖ in each seen patch's column.

        ``slope`` (U, n·P) is consumed (scaled in place). With ``out`` (U, D) given, the result is
        written there: the feature columns are overwritten, or added to with ``accumulate``; the
        columns of the examples' own patches are overwritten when the examples are consecutive
        training examples (in a pass over the training set no other chunk reaches them) and added
        to otherwise (a patch drawn twice into a batch counts twice); other columns are left as
        they are. Without ``out``, a new tensor, 0 in the columns no patch reaches.
        """
        k2 = self.coef.shape[2]
        if self._coef_t is None:  # Cᵀ (2k, n·P), kept: the tensors of an inputs object never change
            self._coef_t = self.coef.reshape(-1, k2).T.contiguous()
        feature_part = thin_product(slope, self.coef.reshape(-1, k2), self._coef_t)
        norm = self.noise_norm.reshape(1, -1)
        cols, seen = self._noise_columns()
        whole = isinstance(cols, slice) and cols.start == k2 and cols.stop == self.dim
        if out is None:
            make = torch.empty if whole else torch.zeros
            grad = make(slope.shape[0], self.dim, dtype=slope.dtype, device=slope.device)
        else:
            grad = out
        if accumulate and out is not None:
            grad[:, :k2] += feature_part
        else:
            grad[:, :k2] = feature_part
        if isinstance(cols, slice):
            torch.mul(slope, norm, out=grad[:, cols])
        elif cols is not None:
            grad.index_add_(1, cols[seen], slope[:, seen].mul_(norm[:, seen]))
        return grad


Inputs = DenseInputs | OrthogonalInputs
