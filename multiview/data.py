"""The multi-view data distribution (paper §3, spec §1): features, sampling, and the batch.

Features are indexed ``f = 2·j + ℓ`` for class ``j`` and view ``ℓ ∈ {0, 1}`` (the paper's
v_{j,1}, v_{j,2}). Every example is built as

    x_p = z_p·v_{f(p)} + Σ_{v′∈V} α_{p,v′}·v′ + ξ_p        (patch p carries feature f(p), or none)

and the batch keeps every ingredient (label, single-view flag, dominant view, per-feature totals,
patch assignment, coefficients, noise) so that later measurements can explain each example.

Two noise models (``DataConfig.noise_model``): ``gaussian`` draws ξ_p ~ N(0, σ²I_d) and
materializes X (n, P, d); ``orthogonal`` is the d → ∞ limit at the same noise norm σ·√d, where
every ξ_p is orthogonal to the features and to every other ξ_p, and X is never materialized
(:mod:`multiview.inputs`).
Sampling is vectorised over examples and runs on the CPU in float64 from a seeded generator, so
the same seed gives the same data on every device and dtype; the batch is then moved.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from multiview.config import DataConfig
from multiview.inputs import DenseInputs, Inputs, OrthogonalInputs
from multiview.seeding import generator

_CHUNK = 4096  # examples generated at once (bounds the float64 scratch memory)


class DataError(ValueError):
    """Sampling cannot satisfy the configuration (e.g. not enough patches with ``on_cap='error'``)."""


@dataclass
class Batch:
    """n examples of the multi-view distribution and how each was built.

    Shapes: ``X`` (n, P, d) (``None`` under the orthogonal noise model); ``y`` (n,) class;
    ``single`` (n,) single-view flag; ``dominant`` (n,) the dominant view ℓ̂ ∈ {0, 1} of
    single-view examples (−1 for multi-view); ``totals`` (n, 2k)
    the per-feature totals S_v = Σ_p z_p (0 where v ∉ V(X)); ``patch_feature`` (n, P) the feature
    carried by each patch (−1 for a non-feature patch); ``z`` (n, P) its coefficient z_p;
    ``alpha`` (n, P, 2k) the feature-noise coefficients α_{p,v′}; ``noise`` (n, P, d) ξ_p (``None``
    under the orthogonal noise model); ``noise_norm`` (n, P) ‖ξ_p‖; ``capped`` (n,) whether
    cross-class features were dropped for lack of patches.
    """

    X: Tensor | None
    y: Tensor
    single: Tensor
    dominant: Tensor
    totals: Tensor
    patch_feature: Tensor
    z: Tensor
    alpha: Tensor
    noise: Tensor | None
    noise_norm: Tensor
    capped: Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str, dtype: torch.dtype) -> Batch:
        moved = {}
        for f in fields(self):
            t = getattr(self, f.name)
            if t is None:
                moved[f.name] = None
            else:
                moved[f.name] = t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device)
        return Batch(**moved)

    def subset(self, index: Tensor | slice) -> Batch:
        return Batch(**{f.name: _index(getattr(self, f.name), index) for f in fields(self)})

    @property
    def coef(self) -> Tensor:
        """(n, P, 2k): every feature's coefficient on every patch, z_p·[f = f(p)] + α_{p,f}."""
        coef = self.alpha.clone()
        coef.scatter_add_(2, self.patch_feature.clamp(min=0)[..., None], self.z[..., None])
        return coef

    @property
    def cross_features(self) -> Tensor:
        """(n, 2k) bool: which features of other classes are present (V′)."""
        k2 = self.totals.shape[1]
        own = torch.arange(k2, device=self.y.device)[None, :] // 2 == self.y[:, None]
        return (self.totals > 0) & ~own


def _index(t: Tensor | None, index: Tensor | slice) -> Tensor | None:
    return None if t is None else t[index]


def _cat(parts: list[Tensor | None]) -> Tensor | None:
    if parts[0] is None:
        return None
    return parts[0] if len(parts) == 1 else torch.cat(parts)  # type: ignore[arg-type]


class MultiViewDistribution:
    """The distribution D of a :class:`DataConfig`, with its 2k orthonormal features fixed by a seed.

    ``features`` is (2k, d), row ``2j + ℓ`` = v_{j,ℓ}: the first 2k columns of Q from the QR
    decomposition of a d × 2k Gaussian matrix.
    """

    def __init__(self, config: DataConfig, seed: int) -> None:
        config.validate()
        self.config = config
        self.seed = seed
        gauss = torch.randn(
            config.d, 2 * config.k, generator=generator(seed, "features"), dtype=torch.float64
        )
        q, _ = torch.linalg.qr(gauss)
        self.features = q.T.contiguous()

    @property
    def feature_class(self) -> Tensor:
        """(2k,) the class of each feature."""
        return torch.arange(2 * self.config.k) // 2

    def noise_std(self, patch_feature: Tensor) -> Tensor:
        """Per-patch std of ξ_p: σ_p on feature patches, σ_nonfeature elsewhere. Same shape."""
        c = self.config
        return torch.where(
            patch_feature >= 0,
            torch.tensor(c.sigma_p, dtype=torch.float64, device=patch_feature.device),
            torch.tensor(c.sigma_nonfeature_resolved, dtype=torch.float64, device=patch_feature.device),
        )

    def sample(
        self,
        n: int,
        stream: str,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Batch:
        """Draw ``n`` i.i.d. examples from the named random stream (e.g. ``"train"``, ``"test"``)."""
        gen = generator(self.seed, "data", stream)
        parts = []
        for start in range(0, n, _CHUNK):
            part = self._sample_chunk(min(_CHUNK, n - start), gen)
            parts.append(part.to(device, dtype))
        return Batch(**{f.name: _cat([getattr(p, f.name) for p in parts]) for f in fields(Batch)})

    @property
    def orthogonal(self) -> bool:
        return self.config.noise_model == "orthogonal"

    def weight_dim(self, n_train: int) -> int:
        """D, the length of a weight vector: d, or 2k + N·P under the orthogonal noise model."""
        c = self.config
        return 2 * c.k + n_train * c.P if self.orthogonal else c.d

    def inputs(self, batch: Batch, seen: bool, fresh_key: int = 0) -> Inputs:
        """The batch as learner inputs. ``seen``: these are the training examples (in order), whose
        noise directions own weight coordinates; otherwise every noise direction is fresh."""
        if not self.orthogonal:
            assert batch.X is not None
            return DenseInputs(batch.X)
        n = len(batch)
        index = (
            torch.arange(n, device=batch.y.device) if seen else torch.full((n,), -1, device=batch.y.device)
        )
        n_train = n if seen else 0
        return OrthogonalInputs(batch.coef, batch.noise_norm, index, n_train, fresh_key)

    def feature_coordinates(self, weights: Tensor) -> Tensor:
        """(..., 2k): ⟨w, v_f⟩ for every feature f, for weights (..., D)."""
        if self.orthogonal:
            return weights[..., : 2 * self.config.k]
        return weights @ self.features.to(device=weights.device, dtype=weights.dtype).T

    def own_noise_correlations(self, weights: Tensor, batch: Batch) -> Tensor:
        """(n, P, R, k, m): ⟨w_{i,r}, ξ_p⟩ of every training patch's own noise, weights (R, k, m, D)."""
        R, k, m, D = weights.shape
        n, P = batch.y.shape[0], batch.noise_norm.shape[1]
        if self.orthogonal:
            cols = 2 * k + torch.arange(n * P, device=weights.device)
            coords = weights.reshape(-1, D)[:, cols].T.reshape(n, P, R, k, m)
            return coords * batch.noise_norm[..., None, None, None]
        assert batch.noise is not None
        return (batch.noise.reshape(-1, D) @ weights.reshape(-1, D).T).view(n, P, R, k, m)

    def fresh_noise_correlations(self, weights: Tensor, batch: Batch, init_std: float) -> Tensor:
        """(n, P, R, k, m): ⟨w_{i,r}, ξ′_p⟩ for fresh noise ξ′ of the same law as ``batch``'s.

        Gaussian model: new vectors are drawn. Orthogonal model: a fresh direction is orthogonal to
        everything trained, so the correlation is ‖ξ_p‖ times the weight's initial coordinate on it,
        N(0, ``init_std``²).
        """
        R, k, m, D = weights.shape
        n, P = batch.y.shape[0], batch.noise_norm.shape[1]
        gen = generator(self.seed, "fresh-noise")
        if self.orthogonal:
            g = torch.randn(n, P, R, k, m, generator=gen, dtype=torch.float64, device="cpu") * init_std
            return g.to(weights.device, weights.dtype) * batch.noise_norm[..., None, None, None]
        xi = self._gaussian_noise(batch.patch_feature.cpu(), gen).to(weights.device, weights.dtype)
        return (xi.reshape(-1, D) @ weights.reshape(-1, D).T).view(n, P, R, k, m)

    def _gaussian_noise(self, patch_feature: Tensor, gen: torch.Generator) -> Tensor:
        """(n, P, d) ξ with per-patch std; projected off span(V) unless ``noise_in_feature_span``."""
        std = self.noise_std(patch_feature)
        noise = torch.randn(*std.shape, self.config.d, generator=gen, dtype=torch.float64, device="cpu")
        noise.mul_(std[..., None])
        if not self.config.noise_in_feature_span:
            noise -= (noise @ self.features.T) @ self.features
        return noise

    # ----------------------------------------------------------------------------------------

    def _sample_chunk(self, n: int, gen: torch.Generator) -> Batch:
        c = self.config
        k2, P, Cp = 2 * c.k, c.P, c.C_p
        f64 = torch.float64
        feat_class = self.feature_class

        y = torch.randint(0, c.k, (n,), generator=gen)
        single = torch.rand(n, generator=gen, dtype=f64) < c.mu
        dominant = torch.where(single, torch.randint(0, 2, (n,), generator=gen), torch.full((n,), -1))

        # V(X): both label views, plus each other-class feature with probability s/k.
        own = feat_class[None, :] == y[:, None]
        cross = (torch.rand(n, k2, generator=gen, dtype=f64) < c.s / c.k) & ~own
        max_cross = P // Cp - 2
        capped = cross.sum(1) > max_cross
        if bool(capped.any()):
            if c.on_cap == "error":
                worst = int(cross.sum(1).max())
                raise DataError(
                    f"data.P = {P} holds {P // Cp} features of C_p = {Cp} patches, but an example drew "
                    f"{worst} cross-class features (+2 label views); raise data.P, lower data.s, "
                    "or set data.on_cap = 'drop'"
                )
            key = torch.where(
                cross, torch.rand(n, k2, generator=gen, dtype=f64), torch.full((n, k2), 2.0, dtype=f64)
            )
            rank = key.argsort(1).argsort(1)
            cross &= rank < max_cross
        present = own | cross

        # Per-feature totals S_v, uniform in the interval of the feature's role.
        lo = torch.zeros(n, k2, dtype=f64)
        hi = torch.zeros(n, k2, dtype=f64)
        view = torch.arange(k2) % 2
        is_dom = own & (view[None, :] == dominant[:, None])
        is_weak = own & single[:, None] & ~is_dom
        roles = [
            (own & ~single[:, None], c.label_view_total, 1.0),
            (is_dom, c.dominant_view_total, 1.0),
            (is_weak, c.weak_view_total, c.rho),
            (cross & ~single[:, None], c.cross_total_multi, 1.0),
            (cross & single[:, None], c.cross_total_single, c.Gamma),
        ]
        for mask, (a, b), scale in roles:
            lo = torch.where(mask, a * scale, lo)
            hi = torch.where(mask, b * scale, hi)
        u = torch.rand(n, k2, generator=gen, dtype=f64)
        totals = (lo + u * (hi - lo)) * present

        # Patch assignment: a random permutation of the patches; the j-th present feature takes
        # the patches at permutation positions j·C_p … j·C_p + C_p − 1 (disjoint by construction).
        perm = torch.rand(n, P, generator=gen, dtype=f64).argsort(1)
        pos = perm.argsort(1)  # pos[n, p]: position of patch p in the permutation
        slot, within = pos // Cp, pos % Cp
        order_key = torch.where(present, torch.arange(k2)[None, :], torch.full((1, k2), k2))
        slot_feature = order_key.sort(1).values  # present features first, in index order
        n_present = present.sum(1, keepdim=True)
        has_feature = slot < n_present
        patch_feature = torch.where(
            has_feature, slot_feature.gather(1, slot.clamp(max=k2 - 1)), torch.full_like(slot, -1)
        )

        # Split each total over its C_p patches.
        if c.split == "dirichlet":
            e = -torch.log(torch.rand(n, k2, Cp, generator=gen, dtype=f64).clamp_min(1e-300))
            share = e / e.sum(-1, keepdim=True)
        else:
            share = torch.full((n, k2, Cp), 1.0 / Cp, dtype=f64)
        pf = patch_feature.clamp(min=0)
        z = totals.gather(1, pf) * share[torch.arange(n)[:, None], pf, within] * has_feature

        # Feature noise α_{p,v′} ∈ [0, γ] on every feature (or on a few per patch).
        alpha = c.gamma * torch.rand(n, P, k2, generator=gen, dtype=f64)
        if c.feature_noise == "sparse":
            keep = (
                torch.rand(n, P, k2, generator=gen, dtype=f64).argsort(-1).argsort(-1) < c.feature_noise_count
            )
            alpha = alpha * keep

        std = self.noise_std(patch_feature)
        if self.orthogonal:
            noise, X = None, None
            noise_norm = std * c.d**0.5
        else:
            noise = self._gaussian_noise(patch_feature, gen)
            noise_norm = noise.norm(dim=-1)
            coef = alpha.clone()
            coef.scatter_add_(2, pf[..., None], z[..., None])
            X = torch.addmm(noise.view(-1, c.d), coef.view(-1, k2), self.features).view(noise.shape)
        return Batch(
            X=X,
            y=y,
            single=single,
            dominant=dominant,
            totals=totals,
            patch_feature=patch_feature,
            z=z,
            alpha=alpha,
            noise=noise,
            noise_norm=noise_norm,
            capped=capped,
        )
