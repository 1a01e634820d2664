"""Stage-2 report: NLL in bits per code on held-out images, and new images sampled from the prior."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
import torch

from monai_genvq.engines.autoencoder import PrepareAutoencoderBatch
from monai_genvq.networks.priors.base import CodePrior, VQStage1
from monai_genvq.utils.fileio import atomic_path, atomic_write_text, write_json
from monai_genvq.utils.tables import format_mean_std, markdown_table, mean_std
from monai_genvq.visualize.grids import save_image_grid

if TYPE_CHECKING:
    from ignite.engine import Engine

__all__ = ["CodePriorReport", "save_nifti_slice"]


def save_nifti_slice(image: np.ndarray | torch.Tensor, path: str | os.PathLike) -> Path:
    """Write one (H, W) or (1, H, W) image as a 2-D float32 NIfTI (1 mm pixels), atomically."""
    arr = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image, dtype=np.float32)
    arr = arr.reshape(arr.shape[-2:])
    with atomic_path(path) as tmp:
        nib.save(nib.Nifti1Image(arr, np.eye(4)), str(tmp))
    return Path(path)


class CodePriorReport:
    """Evaluates a trained code prior and writes samples from it (attach to the prior trainer).

    At the end of training (or when :meth:`run` is called) it writes into ``output_dir``:

    - ``metrics.json`` / ``metrics.md``: NLL of the held-out code maps in bits per code (mean ±
      std over images), next to two context-free references — ``log2 K`` (uniform codes) and the
      entropy of the held-out set's own code histogram (the best i.i.d. model, fitted on the test
      codes themselves);
    - ``samples.png``: a grid of ``num_samples`` images decoded from sampled code maps, and
      ``samples/sample_XXX.nii.gz`` (2-D NIfTI) for each; ``reference.png``: held-out images for
      comparison.

    Args:
        output_dir: folder for the outputs.
        prior: the trained :class:`~monai_genvq.networks.CodePrior`.
        stage1: the frozen autoencoder (:class:`~monai_genvq.networks.VQStage1`).
        data_loader: held-out images (batches with the images under ``prepare_batch``'s key).
        spatial_shape: (H, W) of the code maps to sample.
        num_samples: number of images to sample.
        temperature: sampling temperature.
        seed: seed of the sampler (the global RNG state is restored afterwards).
        prepare_batch: batch -> (images, ...).
        method: name used in the tables.
    """

    def __init__(
        self,
        output_dir: str,
        prior: CodePrior,
        stage1: VQStage1,
        data_loader: Iterable,
        spatial_shape: Sequence[int],
        num_samples: int = 16,
        temperature: float = 1.0,
        seed: int = 0,
        prepare_batch: Callable = PrepareAutoencoderBatch("image"),
        method: str = "",
    ) -> None:
        self.output_dir = Path(output_dir)
        self.prior = prior
        self.stage1 = stage1
        self.data_loader = data_loader
        self.spatial_shape = tuple(int(s) for s in spatial_shape)
        self.num_samples = num_samples
        self.temperature = temperature
        self.seed = seed
        self.prepare_batch = prepare_batch
        self.method = method
        self.results: dict | None = None

    def attach(self, engine: Engine) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.COMPLETED, lambda _: self.run())

    def sample_codes(self, device: torch.device) -> torch.Tensor:
        """``num_samples`` code maps drawn from the prior with the report's seed (global RNG restored)."""
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            return self.prior.sample(self.num_samples, self.spatial_shape, temperature=self.temperature)

    def write_samples(self, sampled: torch.Tensor, references: torch.Tensor, device: torch.device) -> dict:
        """Decode the sampled code maps and write them (here: PNG grid + 2-D NIfTI images).

        Subclasses override this for other data (see :class:`StreamlinePriorReport`); the returned
        dict is added to ``metrics.json``.
        """
        decoded = self.stage1.decode_samples(sampled.to(device)).float().clamp(0, 1).cpu()
        save_image_grid(decoded, self.output_dir / "samples.png", nrow=8)
        save_image_grid(references.clamp(0, 1), self.output_dir / "reference.png", nrow=8)
        for i, image in enumerate(decoded):
            save_nifti_slice(image, self.output_dir / "samples" / f"sample_{i:03d}.nii.gz")
        return {"figures": ["samples.png", "reference.png"]}

    @torch.no_grad()
    def run(self) -> dict:
        device = next(self.prior.parameters()).device
        was_training = self.prior.training
        self.prior.eval()
        bits, codes, references = [], [], []
        for batch in self.data_loader:
            images = self.prepare_batch(batch, device)[0]
            c = self.stage1.index_quantize(images)
            bits.append(self.prior.nll_bits(c).cpu())
            codes.append(c.cpu())
            if sum(len(r) for r in references) < self.num_samples:
                references.append(images.cpu())
        if not bits:
            raise ValueError("CodePriorReport got an empty data loader; nothing to evaluate the prior on.")
        bits_t, codes_t = torch.cat(bits).double(), torch.cat(codes)
        k = self.prior.num_embeddings
        hist = torch.bincount(codes_t.reshape(-1), minlength=k).double()
        p = hist / hist.sum()
        marginal = float(-(p[p > 0] * p[p > 0].log2()).sum())
        sampled = self.sample_codes(device)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        extra = self.write_samples(sampled, torch.cat(references)[: self.num_samples], device)
        self.results = {
            "method": self.method,
            "prior": type(self.prior).__name__,
            "n_images": int(bits_t.numel()),
            "code_map_shape": list(codes_t.shape[1:]),
            "nll_bits_per_code": mean_std(bits_t),
            "uniform_bits_per_code": math.log2(k),
            "marginal_entropy_bits_per_code": marginal,
            "num_samples": self.num_samples,
            "temperature": self.temperature,
            "sampled_codes_used": int(sampled.unique().numel()),
            **extra,
        }
        write_json(self.output_dir / "metrics.json", self.results)
        table = markdown_table(
            ["stage 1", "prior", "NLL (bits/code)", "uniform log2 K", "held-out code entropy"],
            [
                [
                    self.method,
                    self.results["prior"],
                    format_mean_std(self.results["nll_bits_per_code"]),
                    f"{math.log2(k):.3f}",
                    f"{marginal:.3f}",
                ]
            ],
        )
        atomic_write_text(self.output_dir / "metrics.md", "# Code prior\n\n" + table)
        self.prior.train(was_training)
        return self.results
