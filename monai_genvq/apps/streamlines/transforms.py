"""Streamline transforms: resampling, global min/max normalisation (invertible) and the bundle layout.

Layouts:
    * streamlines: ``(S, P, 3)`` -- streamline index, point index, xyz (RAS mm or normalised).
    * bundle tensor (network layout): ``(3, S, P)`` -- xyz channels, streamline index, point index.
      Batched forms ``(B, S, P, 3)`` and ``(B, 3, S, P)`` are accepted by the layout functions.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dipy.tracking.streamline import set_number_of_points
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform, Transform
from monai.utils import TraceKeys

from monai_genvq.utils.fileio import write_json

__all__ = [
    "resample_streamlines",
    "streamlines_to_bundle_tensor",
    "bundle_tensor_to_streamlines",
    "StreamlineNormalizer",
    "ResampleStreamlines",
    "ResampleStreamlinesd",
    "NormalizeStreamlines",
    "NormalizeStreamlinesd",
    "StreamlinesToBundleTensor",
    "StreamlinesToBundleTensord",
]

ArrayLike = Any  # numpy array or torch tensor


def resample_streamlines(streamlines: Sequence[np.ndarray] | np.ndarray, n_points: int) -> np.ndarray:
    """Resample every streamline to ``n_points`` points equally spaced along its arc length.

    Args:
        streamlines: a sequence of ``(N_i, 3)`` arrays (``N_i >= 2``) or one ``(S, N, 3)`` array.
        n_points: points per output streamline (>= 2).

    Returns:
        float32 array ``(S, n_points, 3)``; the first and last points are kept.

    Raises:
        ValueError: ``n_points < 2``, no streamlines, or a streamline that is not ``(N, 3)`` with N >= 2.

    Example:
        >>> line = np.stack([np.linspace(0, 10, 7), np.zeros(7), np.zeros(7)], axis=1)
        >>> resample_streamlines([line], 3)[0, :, 0]
        array([ 0.,  5., 10.], dtype=float32)
    """
    if int(n_points) != n_points or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2, got {n_points}")
    arrays = [np.ascontiguousarray(s, dtype=np.float32) for s in streamlines]
    if not arrays:
        raise ValueError("cannot resample an empty set of streamlines")
    for index, s in enumerate(arrays):
        if s.ndim != 2 or s.shape[1] != 3 or s.shape[0] < 2:
            raise ValueError(f"streamline {index} must be an (N, 3) array with N >= 2, got shape {s.shape}")
    resampled = set_number_of_points(arrays, nb_points=int(n_points))
    return np.ascontiguousarray(np.stack(resampled), dtype=np.float32)


def _moveaxis(x: ArrayLike, source: int, destination: int) -> ArrayLike:
    if isinstance(x, torch.Tensor):
        return torch.movedim(x, source, destination).contiguous()
    return np.ascontiguousarray(np.moveaxis(np.asarray(x), source, destination))


def streamlines_to_bundle_tensor(streamlines: ArrayLike) -> ArrayLike:
    """``(S, P, 3)`` -> ``(3, S, P)`` (or batched ``(B, S, P, 3)`` -> ``(B, 3, S, P)``); numpy or torch.

    Example:
        >>> streamlines_to_bundle_tensor(np.zeros((64, 32, 3))).shape
        (3, 64, 32)
    """
    if streamlines.ndim not in (3, 4) or streamlines.shape[-1] != 3:
        raise ValueError(f"expected streamlines shaped (S, P, 3) or (B, S, P, 3), got {tuple(streamlines.shape)}")
    return _moveaxis(streamlines, -1, -3)


def bundle_tensor_to_streamlines(bundle: ArrayLike) -> ArrayLike:
    """``(3, S, P)`` -> ``(S, P, 3)`` (or batched ``(B, 3, S, P)`` -> ``(B, S, P, 3)``); numpy or torch.

    Example:
        >>> bundle_tensor_to_streamlines(np.zeros((3, 64, 32))).shape
        (64, 32, 3)
    """
    if bundle.ndim not in (3, 4) or bundle.shape[-3] != 3:
        raise ValueError(f"expected a bundle tensor shaped (3, S, P) or (B, 3, S, P), got {tuple(bundle.shape)}")
    return _moveaxis(bundle, -3, -1)


class StreamlineNormalizer:
    """One global, isotropic affine map between millimetres and [-1, 1].

    A single scalar minimum and maximum are taken over every coordinate of every axis, so all axes are
    scaled by the same factor and distances stay proportional to millimetres
    (1 normalised unit = :attr:`scale` mm). The map is
    ``normalised = 2 (x - minimum) / (maximum - minimum) - 1``, computed in float64, so data the
    normaliser was fitted on lands exactly in [-1, 1] and ``denormalize(normalize(x))`` returns
    float32 millimetres within 1e-4 mm. Works on numpy arrays and torch tensors of any layout.

    Args:
        minimum: lower bound in mm (leave both ``None`` and call :meth:`fit`).
        maximum: upper bound in mm.

    Raises:
        ValueError: only one bound given, non-finite bounds, or ``maximum <= minimum``.

    Example:
        >>> norm = StreamlineNormalizer().fit([np.array([[-70.0, 0.0, 10.0], [30.0, 5.0, 0.0]])])
        >>> norm.normalize(np.array([-70.0, 30.0]))
        array([-1.,  1.])
        >>> norm.scale  # mm per normalised unit
        50.0
    """

    def __init__(self, minimum: float | None = None, maximum: float | None = None) -> None:
        if (minimum is None) != (maximum is None):
            raise ValueError("give both minimum and maximum, or neither (and call fit)")
        self.minimum: float | None = None
        self.maximum: float | None = None
        if minimum is not None:
            self._set(float(minimum), float(maximum))

    def _set(self, minimum: float, maximum: float) -> None:
        if not (math.isfinite(minimum) and math.isfinite(maximum)):
            raise ValueError(f"normaliser bounds must be finite, got minimum={minimum}, maximum={maximum}")
        if maximum <= minimum:
            raise ValueError(
                f"normaliser needs maximum > minimum, got minimum={minimum}, maximum={maximum} "
                "(all coordinates are equal, so there is no extent to scale)"
            )
        self.minimum, self.maximum = minimum, maximum

    @property
    def fitted(self) -> bool:
        """Whether the bounds are set."""
        return self.minimum is not None

    @property
    def scale(self) -> float:
        """Millimetres per normalised unit, ``(maximum - minimum) / 2``.

        A BUAN threshold of 0.05 in the normalised space is ``0.05 * scale`` mm.
        """
        self._check_fitted()
        return (self.maximum - self.minimum) / 2.0

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("StreamlineNormalizer is not fitted: call fit(...) or load(...) first")

    def fit(self, data: ArrayLike | Iterable[ArrayLike]) -> StreamlineNormalizer:
        """Set the bounds to the global min and max of ``data`` (an array/tensor or an iterable of them).

        Args:
            data: coordinates in mm, any shape (e.g. a list of ``(N_i, 3)`` streamlines, ``(S, P, 3)``
                arrays or ``(3, S, P)`` bundle tensors); an iterator is consumed in one pass, one item
                in memory at a time.

        Returns:
            ``self``.

        Raises:
            ValueError: no values, non-finite values, or all values equal.
        """
        items = [data] if isinstance(data, (np.ndarray, torch.Tensor)) else data
        lows, highs = [], []
        for item in items:
            values = item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else np.asarray(item)
            if values.size == 0:
                continue
            if not np.isfinite(values).all():
                raise ValueError("cannot fit the streamline normaliser: the data contain NaN or infinite values")
            lows.append(float(values.min()))
            highs.append(float(values.max()))
        if not lows:
            raise ValueError("cannot fit the streamline normaliser on empty data")
        self._set(min(lows), max(highs))
        return self

    def _map(self, values: ArrayLike, forward: bool) -> ArrayLike:
        span = self.maximum - self.minimum
        if forward:  # (x - min) / span first: values inside the fitted range land exactly in [-1, 1]
            return 2.0 * ((values - self.minimum) / span) - 1.0
        return (values + 1.0) * (span / 2.0) + self.minimum

    def _apply(self, x: ArrayLike, forward: bool) -> ArrayLike:
        self._check_fitted()
        if isinstance(x, torch.Tensor):
            dtype = x.dtype if x.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16) else None
            dtype = dtype or torch.float32
            meta = x if isinstance(x, MetaTensor) else None
            values = (x.as_tensor() if meta is not None else x).to(torch.float64)
            out = self._map(values, forward).to(dtype)
            if meta is not None:
                out = MetaTensor(out)
                out.copy_meta_from(meta)
            return out
        values = np.asarray(x)
        dtype = values.dtype if values.dtype in (np.float32, np.float64, np.float16) else np.float32
        values = values.astype(np.float64)
        return self._map(values, forward).astype(dtype)

    def normalize(self, x: ArrayLike) -> ArrayLike:
        """Millimetres -> normalised units (same type; float32 unless ``x`` is float64/float16)."""
        return self._apply(x, forward=True)

    def denormalize(self, x: ArrayLike) -> ArrayLike:
        """Normalised units -> millimetres (same type; float32 unless ``x`` is float64/float16)."""
        return self._apply(x, forward=False)

    def to_dict(self) -> dict:
        """JSON-ready description (bounds as exact float64 values)."""
        self._check_fitted()
        return {
            "type": "StreamlineNormalizer",
            "version": 1,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "target_range": [-1.0, 1.0],
            "units": "mm",
            "mm_per_unit": self.scale,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> StreamlineNormalizer:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ValueError: the dict lacks ``minimum``/``maximum`` or describes another object.
        """
        if state.get("type", "StreamlineNormalizer") != "StreamlineNormalizer":
            raise ValueError(f"not a StreamlineNormalizer description (type={state.get('type')!r})")
        if "minimum" not in state or "maximum" not in state:
            raise ValueError("a StreamlineNormalizer description needs 'minimum' and 'maximum'")
        return cls(float(state["minimum"]), float(state["maximum"]))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bounds to a JSON file atomically (temporary file + rename); returns the path."""
        return write_json(path, self.to_dict())  # json writes floats with repr: exact round trip

    @classmethod
    def load(cls, path: str | os.PathLike) -> StreamlineNormalizer:
        """Read a normaliser written by :meth:`save`.

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: the file is not a valid normaliser JSON (the message names the file).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Streamline normaliser file '{path}' does not exist")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError, AttributeError) as err:
            raise ValueError(f"Streamline normaliser file '{path}' is not a valid normaliser: {err}") from err

    def __repr__(self) -> str:
        if not self.fitted:
            return "StreamlineNormalizer(unfitted)"
        return f"StreamlineNormalizer(minimum={self.minimum!r}, maximum={self.maximum!r})"


def _as_normalizer(normalizer: StreamlineNormalizer | Mapping | str | os.PathLike) -> StreamlineNormalizer:
    if isinstance(normalizer, StreamlineNormalizer):
        return normalizer
    if isinstance(normalizer, Mapping):
        return StreamlineNormalizer.from_dict(normalizer)
    return StreamlineNormalizer.load(normalizer)


class ResampleStreamlines(Transform):
    """Resample variable-length streamlines to ``(S, n_points, 3)`` float32 (see :func:`resample_streamlines`).

    Args:
        n_points: points per streamline.

    Example:
        >>> ResampleStreamlines(64)([np.random.rand(100, 3), np.random.rand(40, 3)]).shape
        (2, 64, 3)
    """

    def __init__(self, n_points: int = 64) -> None:
        self.n_points = n_points

    def __call__(self, streamlines: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        return resample_streamlines(streamlines, self.n_points)


class ResampleStreamlinesd(MapTransform):
    """Dictionary form of :class:`ResampleStreamlines`.

    Args:
        keys: keys holding sequences of ``(N_i, 3)`` streamlines.
        n_points: points per streamline.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(self, keys: KeysCollection, n_points: int = 64, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.resampler = ResampleStreamlines(n_points)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.resampler(d[key])
        return d


class _TracedArrayTransform(InvertibleTransform):
    """Shared tracing for array transforms whose inverse needs only a small ``extra_info`` dict."""

    def _extra_info(self) -> dict:
        return {}

    def _forward(self, x: ArrayLike) -> ArrayLike:
        raise NotImplementedError

    def _backward(self, x: ArrayLike, extra_info: Mapping) -> ArrayLike:
        raise NotImplementedError

    def __call__(self, data: ArrayLike) -> ArrayLike:
        out = self._forward(data)
        if isinstance(out, MetaTensor):
            out = self.push_transform(out, extra_info=self._extra_info())
        return out

    def inverse(self, data: ArrayLike) -> ArrayLike:
        """Undo the transform; uses the traced parameters when ``data`` is a MetaTensor that carries them."""
        if isinstance(data, MetaTensor) and data.applied_operations:
            info = self.pop_transform(data)
            return self._backward(data, info.get(TraceKeys.EXTRA_INFO, {}))
        return self._backward(data, self._extra_info())

    def track_in_dict(self, d: dict, key: Hashable) -> None:
        """Record the transform in ``d['<key>_transforms']`` when ``d[key]`` is not a MetaTensor (for Invertd)."""
        if not isinstance(d[key], MetaTensor):
            self.push_transform(d, key, extra_info=self._extra_info())

    def inverse_in_dict(self, d: dict, key: Hashable) -> ArrayLike:
        """Invert ``d[key]`` using its own trace, the dict's ``<key>_transforms`` list, or the current parameters."""
        if not isinstance(d[key], MetaTensor) and d.get(self.trace_key(key)):
            info = self.pop_transform(d, key)
            return self._backward(d[key], info.get(TraceKeys.EXTRA_INFO, {}))
        return self.inverse(d[key])


class NormalizeStreamlines(_TracedArrayTransform):
    """Map millimetre coordinates to [-1, 1] with a fitted :class:`StreamlineNormalizer`; invertible.

    Layout-agnostic (a scalar affine map). On a MetaTensor the bounds are recorded in
    ``applied_operations``, so :meth:`inverse` (and MONAI ``Invertd``) map back with the same bounds.

    Args:
        normalizer: a fitted normaliser, its :meth:`~StreamlineNormalizer.to_dict`, or a JSON path.

    Example:
        >>> norm = StreamlineNormalizer(-100.0, 100.0)
        >>> t = NormalizeStreamlines(norm)
        >>> t(np.array([0.0, 50.0]))
        array([0. , 0.5])
        >>> t.inverse(np.array([0.0, 0.5]))
        array([ 0., 50.])
    """

    def __init__(self, normalizer: StreamlineNormalizer | Mapping | str | os.PathLike) -> None:
        self.normalizer = _as_normalizer(normalizer)

    def _extra_info(self) -> dict:
        return {"minimum": self.normalizer.minimum, "maximum": self.normalizer.maximum}

    def _forward(self, x: ArrayLike) -> ArrayLike:
        return self.normalizer.normalize(x)

    def _backward(self, x: ArrayLike, extra_info: Mapping) -> ArrayLike:
        if "minimum" in extra_info:
            return StreamlineNormalizer(extra_info["minimum"], extra_info["maximum"]).denormalize(x)
        return self.normalizer.denormalize(x)


class NormalizeStreamlinesd(MapTransform, InvertibleTransform):
    """Dictionary form of :class:`NormalizeStreamlines`, invertible (works with MONAI ``Invertd``).

    Args:
        keys: keys to normalise (e.g. ``"bundle"``).
        normalizer: a fitted normaliser, its dict, or a JSON path.
        allow_missing_keys: don't raise if a key is missing.

    Example:
        >>> t = NormalizeStreamlinesd("bundle", StreamlineNormalizer(-100.0, 100.0))
        >>> out = t({"bundle": np.full((3, 64, 64), 50.0, np.float32)})
        >>> float(out["bundle"].max()), float(t.inverse(out)["bundle"].max())
        (0.5, 50.0)
    """

    def __init__(
        self,
        keys: KeysCollection,
        normalizer: StreamlineNormalizer | Mapping | str | os.PathLike,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.normalizer_transform = NormalizeStreamlines(normalizer)

    @property
    def normalizer(self) -> StreamlineNormalizer:
        """The underlying normaliser."""
        return self.normalizer_transform.normalizer

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizer_transform(d[key])
            self.normalizer_transform.track_in_dict(d, key)
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.normalizer_transform.inverse_in_dict(d, key)
        return d


class StreamlinesToBundleTensor(_TracedArrayTransform):
    """``(S, P, 3)`` streamlines -> ``(3, S, P)`` bundle tensor (the network layout); invertible.

    Example:
        >>> StreamlinesToBundleTensor()(np.zeros((64, 64, 3))).shape
        (3, 64, 64)
    """

    def _forward(self, x: ArrayLike) -> ArrayLike:
        return streamlines_to_bundle_tensor(x)

    def _backward(self, x: ArrayLike, extra_info: Mapping) -> ArrayLike:
        return bundle_tensor_to_streamlines(x)


class StreamlinesToBundleTensord(MapTransform, InvertibleTransform):
    """Dictionary form of :class:`StreamlinesToBundleTensor`.

    Args:
        keys: keys holding ``(S, P, 3)`` arrays.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.converter = StreamlinesToBundleTensor()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.converter(d[key])
            self.converter.track_in_dict(d, key)
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.converter.inverse_in_dict(d, key)
        return d
