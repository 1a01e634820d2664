"""Unsupervised segmentation with a trained hyperbolic VAE: embed, cluster, match, score, write.

Per volume: per-voxel posterior means (fully convolutional, :meth:`HyperbolicVAE.embed_volume`),
Poincaré k-means (Fréchet means) or Euclidean k-means with k = classes of each level, Hungarian
matching of clusters to labels and Dice (Hsu et al. 2021's protocol, METRICS.md), segmentations
written in the input's geometry (NIfTI affine / MRC voxel size) with cluster ids replaced by the
matched label ids (unmatched clusters -> 255).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_genvq.clustering import assign_clusters, poincare_kmeans
from monai_genvq.data.volumes import load_volume, save_segmentation
from monai_genvq.metrics.cluster_dice import hungarian_dice
from monai_genvq.reporting import atomic_write_text, markdown_table, write_json

__all__ = ["HyperbolicSegmentation", "write_comparison_table"]


class HyperbolicSegmentation:
    """Evaluate (or just run) unsupervised segmentation of a list of volumes.

    Args:
        network: a trained :class:`~monai_genvq.networks.HyperbolicVAE`.
        records: dicts with ``image`` (path or list of channel paths) and the label keys.
        levels: ``{level name: (label key or None, number of clusters, label ids or None)}``; a label map
            is first converted by ``label_transforms[name]`` when given (e.g. BraTS whole tumour).
        output_dir: where ``metrics.json``, ``metrics.md`` and ``segmentations/`` go.
        method: configuration name in the outputs (e.g. "hyperbolic").
        clustering: "auto" (Poincaré k-means for c > 0, Euclidean for a flat latent), "poincare" or "euclidean".
        normalize: intensity normalisation used in training (see :func:`~monai_genvq.data.load_volume`).
        mask: "none" or "nonzero" (cluster only voxels where any channel ≠ 0, e.g. the brain; others get 0).
        label_transforms: optional ``{level name: callable(label array) -> array}``.
        checkpoint: optional path of a state dict (``{"model": …}`` or bare) loaded with weights_only=True.
        device: torch device.
        max_fit_points: k-means is fitted on at most this many voxels and then assigns all.
        write_segmentations: write one file per (volume, level).
        write_embeddings: also write each volume's per-voxel embedding as a 4-D NIfTI (X, Y, Z, d) in the
            input's geometry (for MRC inputs: the file's axis order and voxel size).
        seed: k-means seed.
        zoom: resampling factor the network was trained at (see :meth:`HyperbolicVAE.embed_volume`).

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
        zoom: float = 1.0,
    ) -> None:
        if not records:
            raise ValueError("no volumes to segment (empty datalist)")
        self.network, self.records, self.levels = network, list(records), dict(levels)
        self.output_dir, self.method, self.clustering = Path(output_dir), method, clustering
        self.normalize, self.mask, self.label_transforms = normalize, mask, dict(label_transforms or {})
        self.checkpoint, self.device, self.max_fit_points = checkpoint, torch.device(device), max_fit_points
        self.write_segmentations, self.dataset, self.seed = write_segmentations, dataset, seed
        self.write_embeddings, self.zoom = write_embeddings, float(zoom)

    def _load_checkpoint(self) -> None:
        if self.checkpoint is None:
            return
        state = torch.load(self.checkpoint, map_location=self.device, weights_only=True)
        self.network.load_state_dict(state.get("model", state) if isinstance(state, dict) and "model" in state else state)

    def curvature(self) -> float:
        c = float(getattr(self.network, "curvature", 1.0))
        if self.clustering == "euclidean":
            return 0.0
        if self.clustering == "poincare" and c == 0:
            raise ValueError("Poincaré k-means needs a hyperbolic latent (curvature > 0)")
        return c

    def embed(self, volume: np.ndarray) -> torch.Tensor:
        """(C, *spatial) volume -> (d, *spatial) per-voxel posterior means."""
        self.network.eval()
        return self.network.embed_volume(torch.as_tensor(volume, device=self.device), zoom=self.zoom)

    def segment(self, volume: np.ndarray, n_clusters: int, emb: torch.Tensor | None = None) -> np.ndarray:
        """(C, *spatial) volume -> cluster ids (*spatial) (0-based; masked-out voxels -> -1)."""
        emb = self.embed(volume) if emb is None else emb
        flat = emb.reshape(emb.shape[0], -1).T.cpu()
        keep = np.ones(flat.shape[0], bool) if self.mask == "none" else (volume != 0).any(0).ravel()
        pts = flat[torch.from_numpy(keep)]
        c = self.curvature()
        gen = np.random.default_rng(self.seed)
        fit = pts if pts.shape[0] <= self.max_fit_points else pts[torch.from_numpy(gen.choice(pts.shape[0], self.max_fit_points, replace=False))]
        res = poincare_kmeans(fit, n_clusters, c=c, seed=self.seed)
        labels = np.full(flat.shape[0], -1, np.int64)
        labels[keep] = assign_clusters(pts.float(), res.centres, c).numpy()
        return labels.reshape(volume.shape[1:])

    def run(self) -> dict[str, Any]:
        self._load_checkpoint()
        self.network.to(self.device)
        scores: dict[str, list[float]] = {name: [] for name in self.levels}
        label_scores: dict[str, list[np.ndarray]] = {name: [] for name in self.levels}
        label_ids_seen: dict[str, list[int]] = {}
        per_volume = []
        with torch.no_grad():
            for rec in self.records:
                volume, meta = load_volume(rec["image"], self.normalize)
                entry: dict[str, Any] = {"name": rec.get("name", str(rec["image"]))}
                emb = self.embed(volume)
                if self.write_embeddings:
                    _save_embedding(emb, meta, self.output_dir / "embeddings" / f"{entry['name']}_embedding.nii.gz")
                for name, (label_key, n_clusters, label_ids) in self.levels.items():
                    clusters = self.segment(volume, int(n_clusters), emb)
                    seg_out = clusters
                    if label_key is not None and label_key in rec:
                        label, _ = load_volume(rec[label_key], "none")
                        label = np.rint(label[0]).astype(np.int64)
                        if name in self.label_transforms:
                            label = self.label_transforms[name](label)
                        if self.mask != "none":
                            keep = clusters >= 0
                            dice, mapping, per_label = hungarian_dice(clusters[keep], label[keep], label_ids)
                        else:
                            dice, mapping, per_label = hungarian_dice(clusters, label, label_ids)
                        scores[name].append(dice)
                        label_scores[name].append(per_label)
                        label_ids_seen[name] = sorted(int(i) for i in (label_ids if label_ids is not None else np.unique(label)))
                        entry[name] = {"dice": dice, "per_label": per_label.tolist()}
                        lut = {v: k for k, v in mapping.items()}
                        seg_out = np.vectorize(lambda v: lut.get(int(v), 0 if v < 0 else 255), otypes=[np.int64])(clusters)
                    if self.write_segmentations:
                        ext = ".mrc" if meta.get("format") == "mrc" else ".nii.gz"
                        save_segmentation(np.where(seg_out < 0, 0, seg_out), meta,
                                          self.output_dir / "segmentations" / f"{entry['name']}_{name}{ext}")
                per_volume.append(entry)
        levels = {}
        for name, v in scores.items():
            if not v:
                continue
            per = np.stack(label_scores[name])
            ids = label_ids_seen[name] if per.shape[1] == len(label_ids_seen[name]) else list(range(per.shape[1]))
            levels[name] = {
                "mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v),
                "per_label": {str(i): {"mean": float(per[:, j].mean()), "std": float(per[:, j].std())} for j, i in enumerate(ids)},
            }
        metrics = {
            "method": self.method,
            "dataset": self.dataset,
            "clustering": "euclidean" if self.curvature() == 0 else "poincare",
            "embedding": f"posterior mean per voxel (its N³ patch on the volume resampled by zoom {self.zoom:g})",
            "metric": "Dice after Hungarian matching of clusters to labels (mean over labels), mean ± std over volumes",
            "levels": levels,
            "volumes": per_volume,
        }
        write_json(self.output_dir / "metrics.json", metrics)
        rows = [[name, f"{s['mean']:.3f} ± {s['std']:.3f}"] for name, s in levels.items()]
        atomic_write_text(self.output_dir / "metrics.md", markdown_table(["level", self.method], rows))
        write_comparison_table(self.output_dir.parent.parent)
        return metrics


def _save_embedding(emb: torch.Tensor, meta: Mapping[str, Any], path: Path) -> None:
    import nibabel as nib

    if meta.get("format") == "mrc":
        affine = np.diag([*map(float, meta.get("voxel_size") or (1.0, 1.0, 1.0)), 1.0])
    else:
        affine = meta.get("affine", np.eye(4))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    nib.save(nib.Nifti1Image(emb.movedim(0, -1).cpu().numpy().astype(np.float32), affine), str(tmp))
    os.replace(tmp, path)


def write_comparison_table(outputs_root: str | os.PathLike) -> Path | None:
    """Gather ``<outputs_root>/*/eval/metrics.json`` into ``<outputs_root>/comparison.md`` (levels × configurations)."""
    import json

    root = Path(outputs_root)
    found = {}
    for f in sorted(root.glob("*/eval/metrics.json")):
        try:
            found[f.parent.parent.name] = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
    if not found:
        return None
    levels = sorted({lv for m in found.values() for lv in m.get("levels", {})})
    rows = [[lv] + [f"{m['levels'][lv]['mean']:.3f} ± {m['levels'][lv]['std']:.3f}" if lv in m.get("levels", {}) else "–"
                    for m in found.values()] for lv in levels]
    return atomic_write_text(root / "comparison.md", markdown_table(["level"] + list(found), rows))
