"""Canonical group order: invertible, orientation-consistent, and BUAN-invariant."""

import numpy as np
import torch

from monai_genvq.apps.streamlines import (
    apply_group_order,
    bundle_adjacency_batched,
    canonical_group_order,
    invert_group_order,
)


def _fan(n=16, p=20, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, p)
    offsets = rng.normal(size=(n, 1, 3)) * np.array([1.0, 1.0, 0.2])
    core = np.stack([40 * t, 10 * np.sin(3 * t), 5 * t], 1)
    return core[None] + offsets * (1 + t)[None, :, None]


def test_round_trip_and_orientation():
    rng = np.random.default_rng(1)
    group = _fan()
    reversed_rows = rng.random(len(group)) < 0.5
    scrambled = np.where(reversed_rows[:, None, None], group[:, ::-1], group)[rng.permutation(len(group))]
    order, flipped = canonical_group_order(scrambled)
    canonical = apply_group_order(scrambled, order, flipped)
    starts, ends = canonical[:, 0], canonical[:, -1]
    # every streamline now starts at the same end of the bundle
    assert np.all(np.linalg.norm(starts - starts[0], axis=1) < np.linalg.norm(ends - starts[0], axis=1))
    # rows are sorted along the spread of the midpoints
    mids = canonical.mean(1)
    axis = np.linalg.svd(mids - mids.mean(0))[2][0]
    proj = (mids - mids.mean(0)) @ axis
    assert np.all(np.diff(proj) >= 0) or np.all(np.diff(proj) <= 0)
    assert np.array_equal(invert_group_order(canonical, order, flipped), scrambled)


def test_buan_is_unchanged_by_canonical_order():
    group, other = _fan(seed=0), _fan(seed=3) + 0.8
    canonical = apply_group_order(group, *canonical_group_order(group))

    def to_tensor(x):
        return torch.tensor(x.transpose(2, 0, 1)[None])

    before = bundle_adjacency_batched(to_tensor(group), to_tensor(other), threshold=1.5)
    after = bundle_adjacency_batched(to_tensor(canonical), to_tensor(other), threshold=1.5)
    assert 0.0 < float(before) < 1.0
    assert torch.equal(before, after)
