"""Unsupervised segmentation with a trained hyperbolic VAE: embed, cluster, match, score, write.

Per volume: per-voxel posterior means (fully convolutional, :meth:`HyperbolicVAE.embed_volume`),
Poincaré k-means (Fréchet means) or Euclidean k-means with k = classes of each level, Hungarian
matching of clusters to labels and Dice (Hsu et al. 2021's protocol, docs/METRICS.md), segmentations
written in the input's geometry with cluster ids replaced by the matched label ids (unmatched
clusters -> 255). Volumes are read with MONAI's ``LoadImage`` (NIfTI; MRC through
:class:`~monai_genvq.data.MRCReader`) and written with ``SaveImage`` from the MetaTensor's affine:
NIfTI inputs give NIfTI outputs with their affine, MRC inputs MRC outputs with their voxel size and
origin (:class:`~monai_genvq.data.MRCWriter`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor, NibabelWriter
from monai.transforms import LoadImage, SaveImage

from monai_genvq.apps.hyperbolic.figures import poincare_disk_2d
from monai_genvq.apps.hyperbolic.inferer import cluster_embedding
from monai_genvq.data.errors import VolumeFileError
from monai_genvq.data.mrc import MRCWriter, is_mrc
from monai_genvq.data.volumes import LoadVolume, volume_shape
from monai_genvq.handlers.inference import load_checkpoint_file
from monai_genvq.handlers.progress import CaseProgress
from monai_genvq.metrics.cluster_dice import describe_unmatched, hungarian_dice
from monai_genvq.transforms.intensity import ForegroundNormalize
from monai_genvq.utils.fileio import atomic_path, atomic_write_text, write_json
from monai_genvq.utils.tables import collect_metrics, format_mean_std, markdown_table, mean_std
from monai_genvq.visualize.grids import plot_reconstruction_grid
from monai_genvq.visualize.projections import save_latent_projection
from monai_genvq.visualize.slices import save_segmentation_slices

__all__ = ["HyperbolicSegmentation", "matched_labels", "write_comparison_table"]


def _volume_loader() -> LoadImage:
    """:class:`~monai_genvq.data.LoadVolume` choosing its reader by suffix among MONAI's (NIfTI) and :class:`MRCReader`."""
    return LoadVolume(image_only=True, ensure_channel_first=True)  # registers MRCReader; errors name the file


def matched_labels(clusters: np.ndarray, mapping: Mapping[int, int], unmatched: int = 255) -> np.ndarray:
    """Cluster ids -> the label ids they were matched to (``mapping`` is ``{label: cluster}``, from
    :func:`~monai_genvq.metrics.hungarian_dice`); unmatched clusters -> ``unmatched``, masked-out voxels (< 0) -> 0.

    One table lookup per voxel (a per-voxel Python lookup took seconds on a BraTS volume).

    Example:
        >>> matched_labels(np.array([[-1, 0], [1, 2]]), {1: 0, 4: 2}).tolist()
        [[0, 1], [255, 4]]
    """
    clusters = np.asarray(clusters)
    top = max([int(clusters.max(initial=-1))] + [int(c) for c in mapping.values()])
    table = np.full(top + 2, unmatched, np.int64)
    table[0] = 0  # cluster -1: outside the mask
    for label, cluster in mapping.items():
        table[int(cluster) + 1] = label
    return table[clusters.astype(np.int64) + 1]


def _files(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    return [str(paths)] if isinstance(paths, (str, os.PathLike)) else [str(p) for p in paths]


class HyperbolicSegmentation:
    """Evaluate (or just run) unsupervised segmentation of a list of volumes.

    Args:
        network: a trained :class:`~monai_genvq.apps.hyperbolic.HyperbolicVAE`, or
            :class:`~monai_genvq.metrics.IntensityKMeans` for the k-means-on-intensity reference.
        records: dicts with ``image`` (NIfTI or MRC path, or a list of channel paths) and the label keys.
        levels: ``{level name: (label key or None, number of clusters, label ids or None)}``; a label map
            is first converted by ``label_transforms[name]`` when given (e.g. BraTS whole tumour).
        output_dir: where ``metrics.json``, ``metrics.md`` and ``segmentations/`` go.
        method: configuration name in the outputs (e.g. "hyperbolic").
        clustering: "auto" (Poincaré k-means for c > 0, Euclidean for a flat latent), "poincare" or "euclidean".
        normalize: intensity normalisation used in training: "none", "percentile" or "zscore"
            (:class:`~monai_genvq.transforms.ForegroundNormalize`).
        mask: "none" or "nonzero" (cluster only voxels where any channel ≠ 0, e.g. the brain; others get 0).
        label_transforms: optional ``{level name: callable(label array) -> array}``.
        checkpoint: optional path of a state dict (``{"model": …}`` or bare) loaded with weights_only=True.
        device: torch device.
        max_fit_points: k-means is fitted on at most this many voxels and then assigns all.
        write_segmentations: write one file per (volume, level), NIfTI (uint8) or MRC (int16) like the input.
        write_embeddings: also write each volume's per-voxel embedding as a 4-D NIfTI (X, Y, Z, d) in the
            input's geometry (for MRC inputs: the file's (z, y, x) axis order, its voxel size and origin in
            the affine, :func:`~monai_genvq.data.mrc_affine`).
        seed: k-means seed.
        figures: write figures next to ``metrics.json`` (listed there under ``figures``):
            ``latent_projection.png`` — a seeded subsample of per-voxel embeddings (at most
            ``max_projected``) in the Poincaré disk with its unit circle (PCA for a flat latent), one
            panel per level coloured by the level's label; ``segmentation.png`` — the middle slice
            of the first volume with each level's truth and matched clusters;
            ``reconstructions.png`` — central slices of 8 patches of the first volume over their
            reconstructions from the posterior mean.
        max_projected: embeddings drawn in the projection.
        zoom: resampling factor the network was trained at (see :meth:`HyperbolicVAE.embed_volume`).
        progress_bar: show a progress bar over the volumes (the bundles pass their ``progress_bar`` option).
            Either way :meth:`run` logs one INFO line per volume: name, index/total, each level's Dice
            (labelled volumes) and seconds (:class:`~monai_genvq.handlers.CaseProgress`).
        unmatched_value: Dice of a label left without a cluster (fewer clusters than labels): 0, or
            ``None`` to average matched pairs only as the seed's code does
            (:func:`~monai_genvq.metrics.hungarian_dice`); ``metrics.json`` states it (``unmatched_labels``).

    Example:
        >>> seg = HyperbolicSegmentation(net, records, {"level1": ("label_level1", 2, None)}, "eval")  # doctest: +SKIP
        >>> seg.run()["levels"]["level1"]["mean"]  # doctest: +SKIP
    """

    def __init__(
        self,
        network: torch.nn.Module,
        records: Sequence[Mapping[str, Any]],
        levels: Mapping[str, Sequence[Any]],
        output_dir: str | os.PathLike,
        method: str = "hyperbolic",
        clustering: str = "auto",
        normalize: str = "none",
        mask: str = "none",
        label_transforms: Mapping[str, Any] | None = None,
        checkpoint: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        max_fit_points: int = 200_000,
        write_segmentations: bool = True,
        write_embeddings: bool = False,
        dataset: str = "",
        seed: int = 0,
        figures: bool = True,
        max_projected: int = 3000,
        zoom: float = 1.0,
        progress_bar: bool = False,
        unmatched_value: float | None = 0.0,
    ) -> None:
        if not records:
            raise ValueError("no volumes to segment (empty datalist)")
        self.network, self.records, self.levels = network, list(records), dict(levels)
        self.output_dir, self.method, self.clustering = Path(output_dir), method, clustering
        self.normalize, self.mask, self.label_transforms = normalize, mask, dict(label_transforms or {})
        self.checkpoint, self.device, self.max_fit_points = checkpoint, torch.device(device), max_fit_points
        self.write_segmentations, self.dataset, self.seed = write_segmentations, dataset, seed
        self.write_embeddings, self.zoom = write_embeddings, float(zoom)
        self.figures, self.max_projected = figures, int(max_projected)
        self.progress_bar = bool(progress_bar)
        self.unmatched_value = unmatched_value
        self._loader = _volume_loader()
        self._normalizer = ForegroundNormalize(normalize)

    def load(self, path: str | os.PathLike | Sequence[str | os.PathLike], normalize: bool = True) -> MetaTensor:
        """A (C, *spatial) float32 MetaTensor with its geometry (affine, file name), normalised as in training.

        The same reading as the bundles' ``LoadImaged`` (NIfTI, or MRC through :class:`MRCReader`,
        channel first) followed by :class:`~monai_genvq.transforms.ForegroundNormalize` (``normalize``).

        Args:
            path: a NIfTI or MRC file, or several of one shape (the channels).
            normalize: apply the intensity normalisation (False for label maps).

        Raises:
            VolumeFileError: a missing or unreadable file, or NaN/inf voxels (the message names the file).

        Example:
            >>> seg = HyperbolicSegmentation(net, records, levels, "eval", normalize="zscore")  # doctest: +SKIP
            >>> seg.load("model_0/reconstruction.mrc").meta["voxel_size"]  # doctest: +SKIP
            array([10., 10., 10.])
        """
        img = self._loader(path)  # LoadVolume: every reading error is a VolumeFileError naming the file
        bad = ~torch.isfinite(img.as_tensor())
        if bad.any():
            raise VolumeFileError(f"'{path}' contains {int(bad.sum())} NaN/inf voxels")
        return self._normalizer(img) if normalize else img

    def _load_checkpoint(self) -> None:
        if self.checkpoint is None:
            return
        state = load_checkpoint_file(self.checkpoint, map_location=self.device)
        self.network.load_state_dict(
            state.get("model", state) if isinstance(state, dict) and "model" in state else state
        )

    def curvature(self) -> float:
        c = float(getattr(self.network, "curvature", 1.0))
        if self.clustering == "euclidean":
            return 0.0
        if self.clustering == "poincare" and c == 0:
            raise ValueError("Poincaré k-means needs a hyperbolic latent (curvature > 0)")
        return c

    def embedding_description(self) -> str:
        """What one voxel's embedding is: the network's ``embedding_description`` if it has one, else the VAE's posterior mean."""
        return getattr(self.network, "embedding_description", None) or (
            f"posterior mean per voxel (its N³ patch on the volume resampled by zoom {self.zoom:g})"
        )

    def embed(self, volume: np.ndarray) -> torch.Tensor:
        """(C, *spatial) volume -> (d, *spatial) per-voxel posterior means."""
        self.network.eval()
        return self.network.embed_volume(torch.as_tensor(volume, device=self.device), zoom=self.zoom)

    def segment(self, volume: np.ndarray, n_clusters: int, emb: torch.Tensor | None = None) -> np.ndarray:
        """(C, *spatial) volume -> cluster ids (*spatial) (0-based; masked-out voxels -> -1)."""
        emb = self.embed(volume) if emb is None else emb
        keep = None if self.mask == "none" else (volume != 0).any(0)
        return cluster_embedding(emb, n_clusters, self.curvature(), keep, self.seed, self.max_fit_points)

    def check_records(self) -> None:
        """Refuse, before any embedding is computed, labels that cannot give a meaningful score.

        Raises:
            VolumeFileError: an image and its label differ in shape (naming both files and both shapes), or,
                for a level, every label file holds only background (e.g. a BraTS set without any tumour:
                the Dice would be a number about nothing), naming the files (the first three).
        """
        empty: dict[str, list[str]] = {}
        n_labelled: dict[str, int] = {}
        for rec in self.records:
            images = _files(rec["image"])  # channels of different shapes are refused by LoadVolume
            image_shape = volume_shape(images[0])
            for name, (label_key, _, _) in self.levels.items():
                if label_key is None or label_key not in rec:
                    continue
                label_file = str(rec[label_key])
                label_shape = volume_shape(label_file)
                if label_shape != image_shape:
                    raise VolumeFileError(
                        f"label '{label_file}' has shape {label_shape} but its image '{images[0]}' has shape "
                        f"{image_shape}; a label must lie on its image's voxel grid"
                    )
                label = np.rint(self.load(label_file, normalize=False).as_tensor().numpy()[0]).astype(np.int64)
                if name in self.label_transforms:
                    label = self.label_transforms[name](label)
                n_labelled[name] = n_labelled.get(name, 0) + 1
                if not np.any(label):
                    empty.setdefault(name, []).append(label_file)
        for name, files in empty.items():
            if len(files) == n_labelled[name]:
                what = getattr(self.label_transforms.get(name), "foreground_name", "foreground (non-zero) label")
                shown = ", ".join(f"'{f}'" for f in files[:3]) + (
                    f" and {len(files) - 3} more" if len(files) > 3 else ""
                )
                raise VolumeFileError(
                    f"every label file of level '{name}' ({len(files)}) holds no {what}: {shown}; the Dice of "
                    "clusters against empty labels means nothing (wrong files, wrong label_map, or an unlabelled set?)"
                )

    def _labelled(self) -> bool:
        """Whether any record carries a label of a level (an evaluation, not just a segmentation)."""
        keys = {spec[0] for spec in self.levels.values() if spec[0] is not None}
        return any(k in rec for rec in self.records for k in keys)

    def run(self) -> dict[str, Any]:
        self.check_records()
        self._load_checkpoint()
        self.network.to(self.device)
        scores: dict[str, list[float]] = {name: [] for name in self.levels}
        label_scores: dict[str, list[np.ndarray]] = {name: [] for name in self.levels}
        label_ids_seen: dict[str, list[int]] = {}
        per_volume = []
        sample: dict[str, list] = {"codes": [], **{name: [] for name in self.levels}}
        figure_volume: dict[str, Any] = {}
        progress = CaseProgress(
            len(self.records),
            f"{self.method} {'evaluation' if self._labelled() else 'segmentation'}",
            unit="volume",
            progress_bar=self.progress_bar,
        )
        with torch.no_grad(), progress:
            for rec in self.records:
                entry: dict[str, Any] = {"name": rec.get("name", str(rec["image"]))}
                progress.start(entry["name"])
                image = self.load(rec["image"])
                volume = image.as_tensor().numpy()
                emb = self.embed(volume)
                level_maps: dict[str, np.ndarray] = {}
                if self.write_embeddings:
                    path = self.output_dir / "embeddings" / f"{entry['name']}_embedding.nii.gz"
                    _save_like(emb.float().cpu(), image, path, np.float32, squeeze=False)
                for name, (label_key, n_clusters, label_ids) in self.levels.items():
                    clusters = self.segment(volume, int(n_clusters), emb)
                    seg_out = clusters
                    if label_key is not None and label_key in rec:
                        label = np.rint(self.load(rec[label_key], normalize=False).as_tensor().numpy()[0])
                        label = label.astype(np.int64)
                        if name in self.label_transforms:
                            label = self.label_transforms[name](label)
                        if self.mask != "none":
                            keep = clusters >= 0
                            dice, mapping, per_label = hungarian_dice(
                                clusters[keep], label[keep], label_ids, unmatched_value=self.unmatched_value
                            )
                        else:
                            dice, mapping, per_label = hungarian_dice(
                                clusters, label, label_ids, unmatched_value=self.unmatched_value
                            )
                        level_maps[f"{name} truth"] = label
                        scores[name].append(dice)
                        label_scores[name].append(per_label)
                        label_ids_seen[name] = sorted(
                            int(i) for i in (label_ids if label_ids is not None else np.unique(label))
                        )
                        entry[name] = {"dice": dice, "per_label": per_label.tolist()}
                        seg_out = matched_labels(clusters, mapping)
                    level_maps[name] = seg_out
                    if self.write_segmentations:
                        mrc = is_mrc(image.meta.get("filename_or_obj", ""))
                        _save_like(
                            torch.as_tensor(np.where(seg_out < 0, 0, seg_out))[None],
                            image,
                            self.output_dir / "segmentations" / f"{entry['name']}_{name}{'.mrc' if mrc else '.nii.gz'}",
                            np.int16 if mrc else np.uint8,
                        )
                per_volume.append(entry)
                if self.figures:
                    self._sample_embeddings(volume, emb, level_maps, sample)
                    figure_volume = figure_volume or {"volume": volume, "maps": level_maps, "name": entry["name"]}
                progress.done({f"{name} dice": entry[name]["dice"] for name in self.levels if name in entry})
        levels = {}
        for name, v in scores.items():
            if not v:
                continue
            per = np.stack(label_scores[name])
            ids = label_ids_seen[name] if per.shape[1] == len(label_ids_seen[name]) else list(range(per.shape[1]))
            levels[name] = {**mean_std(v), "per_label": {str(i): mean_std(per[:, j]) for j, i in enumerate(ids)}}
        metrics = {
            "method": self.method,
            "dataset": self.dataset,
            "clustering": "euclidean" if self.curvature() == 0 else "poincare",
            "embedding": self.embedding_description(),
            "metric": "Dice after Hungarian matching of clusters to labels (mean over labels), mean ± std over volumes",
            "unmatched_labels": describe_unmatched(self.unmatched_value),
            "levels": levels,
            "volumes": per_volume,
        }
        if self.figures:
            metrics["figures"] = self._write_figures(sample, figure_volume)
        write_json(self.output_dir / "metrics.json", metrics)
        rows = [[name, f"{s['mean']:.3f} ± {s['std']:.3f}"] for name, s in levels.items()]
        atomic_write_text(self.output_dir / "metrics.md", markdown_table(["level", self.method], rows))
        write_comparison_table(self.output_dir.parent.parent)
        return metrics

    def _sample_embeddings(
        self, volume: np.ndarray, emb: torch.Tensor, level_maps: Mapping[str, np.ndarray], sample: dict
    ) -> None:
        """Add a seeded subsample of this volume's voxels (codes + each level's truth, else clusters) to ``sample``."""
        keep = np.ones(volume.shape[1:], bool) if self.mask == "none" else (volume != 0).any(0)
        where = np.flatnonzero(keep.ravel())
        per_volume = max(1, self.max_projected // len(self.records))
        pick = (
            np.random.default_rng(self.seed).choice(where, min(per_volume, len(where)), replace=False)
            if len(where)
            else where
        )
        sample["codes"].append(
            emb.reshape(emb.shape[0], -1).T[torch.as_tensor(pick, device=emb.device)].float().cpu().numpy()
        )
        for name in self.levels:
            values = level_maps.get(f"{name} truth", level_maps.get(name))
            sample[name].append(values.ravel()[pick])

    @torch.no_grad()
    def _write_figures(self, sample: Mapping[str, list], figure_volume: Mapping[str, Any]) -> list[str]:
        figures = []
        codes = np.concatenate(sample["codes"]) if sample["codes"] else np.zeros((0, 2))
        if len(codes) > 2:
            c = self.curvature()
            labels = {
                f"{name} ({'truth' if name + ' truth' in figure_volume.get('maps', {}) else 'clusters'})": np.concatenate(
                    sample[name]
                )
                for name in self.levels
            }
            disk = functools.partial(poincare_disk_2d, c=c) if c > 0 else None
            save_latent_projection(
                codes,
                labels,
                self.output_dir / "latent_projection.png",
                projector=disk,
                unit_disk=c > 0,
                title=f"{self.method}: {self.embedding_description()}"
                + (" in the Poincaré disk" if c > 0 else " (PCA)"),
            )
            figures.append("latent_projection.png")
        if figure_volume:
            volume = figure_volume["volume"]
            save_segmentation_slices(
                volume,
                figure_volume["maps"],
                self.output_dir / "segmentation.png",
                title=f"{self.method}: {figure_volume['name']} (middle slice)",
            )
            figures.append("segmentation.png")
            n = int(getattr(self.network, "patch_size", 0) or 0)
            if n and all(s >= n for s in volume.shape[1:]):
                gen = np.random.default_rng(self.seed)
                starts = [[int(gen.integers(0, s - n + 1)) for s in volume.shape[1:]] for _ in range(8)]
                patches = torch.stack(
                    [torch.as_tensor(volume[:, a : a + n, b : b + n, d : d + n]) for a, b, d in starts]
                ).float()
                mu = self.network.encode(patches.to(self.device))[0]
                rec = self.network.decode(mu).cpu()
                x, r = patches[:, :1, :, :, n // 2], rec[:, :1, :, :, n // 2]
                lo, hi = float(x.min()), float(x.max())
                scale = max(hi - lo, 1e-12)
                plot_reconstruction_grid(
                    (x - lo) / scale,
                    ((r - lo) / scale).clamp(0, 1),
                    self.output_dir / "reconstructions.png",
                    title=f"{self.method}: patches (top) and reconstructions from μ (bottom), middle slice",
                )
                figures.append("reconstructions.png")
        return figures


def _save_like(data: torch.Tensor, reference: MetaTensor, path: Path, dtype: Any, squeeze: bool = True) -> Path:
    """Write channel-first ``data`` with ``reference``'s affine, atomically (``SaveImage``, no resampling).

    MRC for a ``.mrc`` path (:class:`MRCWriter`), else NIfTI; ``squeeze=False`` keeps a channel axis
    of size 1 (an embedding is always a 4-D NIfTI (X, Y, Z, d)).
    """
    ext = ".mrc" if is_mrc(path) else ".nii.gz"
    if not path.name.endswith(ext):
        raise ValueError(f"'{path}': segmentations and embeddings are written as .nii.gz or .mrc")
    image = MetaTensor(data, affine=reference.affine, meta={k: v for k, v in reference.meta.items() if k != "affine"})
    saver = SaveImage(
        output_ext=ext,
        output_dtype=dtype,
        resample=False,
        separate_folder=False,
        print_log=False,
        squeeze_end_dims=squeeze,
        writer=MRCWriter if ext == ".mrc" else NibabelWriter,
    )
    with atomic_path(path) as tmp:
        saver(image, filename=str(tmp)[: -len(ext)])
    return path


def write_comparison_table(outputs_root: str | os.PathLike) -> Path | None:
    """Gather ``<outputs_root>/*/eval/metrics.json`` into ``<outputs_root>/comparison.md`` (levels × configurations)."""
    root = Path(outputs_root)
    found = collect_metrics(root)
    if not found:
        return None
    levels = sorted({lv for m in found.values() for lv in m.get("levels", {})})
    rows = [
        [lv] + [format_mean_std(m["levels"][lv]) if lv in m.get("levels", {}) else "–" for m in found.values()]
        for lv in levels
    ]
    return atomic_write_text(root / "comparison.md", markdown_table(["level"] + list(found), rows))
