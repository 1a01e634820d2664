"""Stage-2 report for streamline VQ models: NLL in bits per code, and sampled bundles written as .trk in mm."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from monai_genvq.apps.streamlines.figures import save_streamline_render
from monai_genvq.apps.streamlines.io import save_bundle_tensor
from monai_genvq.apps.streamlines.transforms import StreamlineNormalizer
from monai_genvq.engines.autoencoder import PrepareAutoencoderBatch
from monai_genvq.handlers.prior_report import CodePriorReport
from monai_genvq.networks.nets.resnet_autoencoder import InputStatistics
from monai_genvq.networks.priors.base import CodePrior, VQStage1

__all__ = ["SAMPLE_STATISTICS", "ReferenceStatistics", "StreamlinePriorReport", "choose_sample_statistics"]

SAMPLE_STATISTICS = ("nearest", "random", "mean")


@dataclass
class ReferenceStatistics:
    """Code maps and input statistics of reference (training) groups.

    Args:
        codes: (N, H', W') nearest-code index maps.
        mean: (N, C) per-channel means the network removed (normalised coordinates).
        scale: (N,) isotropic RMS scales.
        names: bundle name of each group ("" when unknown).
    """

    codes: torch.Tensor
    mean: torch.Tensor
    scale: torch.Tensor
    names: list[str]


def choose_sample_statistics(
    sampled: torch.Tensor,
    reference: ReferenceStatistics,
    mode: str = "nearest",
    generator: torch.Generator | None = None,
) -> tuple[InputStatistics, torch.Tensor]:
    """Position and scale to decode sampled code maps with, for networks that standardise their input.

    A streamline VQ model with ``standardize_input=True`` encodes the *shape* of a group; its
    per-group mean (position) and RMS scale (size) bypass the codes. A prior over code maps
    therefore samples shapes only, and the statistics must come from elsewhere:

    - ``"nearest"``: those of the reference group whose code map agrees with the sample at the most
      positions (Hamming nearest; ties -> lowest index), so a sampled shape is placed where groups
      with that shape lie;
    - ``"random"``: those of a reference group drawn uniformly (``generator``);
    - ``"mean"``: the mean position and mean scale over the reference groups.

    Args:
        sampled: (S, H', W') sampled index maps.
        reference: the reference groups (:class:`ReferenceStatistics`).
        mode: one of :data:`SAMPLE_STATISTICS`.
        generator: RNG of ``"random"``.

    Returns:
        ``InputStatistics`` with mean (S, C, 1, 1) and scale (S, 1, 1, 1), and the chosen reference
        index per sample (-1 for ``"mean"``).

    Example:
        >>> ref = ReferenceStatistics(torch.tensor([[[0, 0]], [[1, 1]]]), torch.tensor([[0.0], [5.0]]),
        ...                           torch.tensor([1.0, 2.0]), ["A", "B"])
        >>> stats, idx = choose_sample_statistics(torch.tensor([[[1, 0]], [[1, 1]]]), ref)
        >>> idx.tolist(), stats.mean.flatten().tolist()
        ([0, 1], [0.0, 5.0])
    """
    if mode not in SAMPLE_STATISTICS:
        raise ValueError(f"sample statistics mode must be one of {SAMPLE_STATISTICS}; got {mode!r}")
    n, s = reference.codes.shape[0], sampled.shape[0]
    if n == 0:
        raise ValueError("no reference groups to take sampling statistics from (empty training loader?)")
    if reference.codes.shape[1:] != sampled.shape[1:]:
        raise ValueError(
            f"sampled code maps {tuple(sampled.shape[1:])} and reference code maps {tuple(reference.codes.shape[1:])} differ"
        )
    spatial = (1,) * (sampled.dim() - 1)
    if mode == "mean":
        mean = reference.mean.mean(0, keepdim=True).expand(s, -1)
        scale = reference.scale.mean().expand(s)
        index = torch.full((s,), -1, dtype=torch.long)
    else:
        if mode == "random":
            index = torch.randint(0, n, (s,), generator=generator)
        else:
            agree = (sampled.reshape(s, 1, -1).cpu() == reference.codes.reshape(1, n, -1)).sum(-1)
            index = agree.argmax(1)  # first maximum
        mean, scale = reference.mean[index], reference.scale[index]
    return InputStatistics(mean.reshape(s, -1, *spatial).clone(), scale.reshape(s, 1, *spatial).clone()), index


class StreamlinePriorReport(CodePriorReport):
    """:class:`CodePriorReport` for streamline-group VQ models: samples are written as .trk files in mm.

    NLL (bits per code) on the held-out groups as in the base class. Sampled code maps are decoded
    by the frozen stage-1 model and mapped back to millimetres with the training run's saved
    :class:`~monai_genvq.apps.streamlines.StreamlineNormalizer`; each sample is a group of streamlines,
    written to ``samples/sample_XXX.trk`` (and all of them to ``samples.trk``); the first held-out
    groups go to ``reference.trk``. Files carry a 1 mm RAS reference volume that holds every point,
    so dipy (``bbox_valid_check=True``), TrackVis and MI-Brain open them.

    When the network standardises its input (``standardize_input=True``), the decoder needs each
    group's position and scale, which the codes do not hold; they are taken from the *training*
    groups (``statistics_loader``) by ``sample_statistics`` (see :func:`choose_sample_statistics`;
    default ``"nearest"``: the statistics of the training group with the most similar code map).
    ``metrics.json`` lists, per sample, the file, the chosen training group's bundle name and the
    fraction of code positions it shares with the sample.

    Args:
        output_dir, prior, stage1, data_loader, spatial_shape, num_samples, temperature, seed,
        prepare_batch, method: as :class:`CodePriorReport` (``data_loader``: held-out groups).
        normalizer: the training run's normaliser (``StreamlineNormalizer.load(path)``).
        statistics_loader: training groups (batches with the bundle tensors under
            ``prepare_batch``'s key and optionally ``"name"``); needed with ``standardize_input``.
        sample_statistics: ``"nearest"``, ``"random"`` or ``"mean"``.

    Example (in a bundle config):
        ``{"_target_": "monai_genvq.apps.streamlines.StreamlinePriorReport", "output_dir": "@prior_dir",
        "prior": "@prior", "stage1": "@stage1", "data_loader": "@validate#dataloader",
        "statistics_loader": "@train#dataloader", "normalizer": "@normalizer", "spatial_shape": [16, 16],
        "prepare_batch": "@prepare_batch"}``
    """

    def __init__(
        self,
        output_dir: str,
        prior: CodePrior,
        stage1: VQStage1,
        data_loader: Iterable,
        spatial_shape: Sequence[int],
        normalizer: StreamlineNormalizer,
        statistics_loader: Iterable | None = None,
        sample_statistics: str = "nearest",
        num_samples: int = 16,
        temperature: float = 1.0,
        seed: int = 0,
        prepare_batch: Callable = PrepareAutoencoderBatch("bundle"),
        method: str = "",
    ) -> None:
        super().__init__(
            output_dir, prior, stage1, data_loader, spatial_shape, num_samples, temperature, seed, prepare_batch, method
        )
        if sample_statistics not in SAMPLE_STATISTICS:
            raise ValueError(f"sample_statistics must be one of {SAMPLE_STATISTICS}; got {sample_statistics!r}")
        if not normalizer.fitted:
            raise ValueError("StreamlinePriorReport needs the fitted normaliser of the stage-1 training run")
        self.normalizer = normalizer
        self.statistics_loader = statistics_loader
        self.sample_statistics = sample_statistics

    @torch.no_grad()
    def reference_statistics(self, device: torch.device) -> ReferenceStatistics | None:
        """Code maps and statistics of every group of ``statistics_loader`` (None if not needed)."""
        if not getattr(self.stage1.autoencoder, "standardize_input", False):
            return None
        if self.statistics_loader is None:
            raise ValueError(
                "the stage-1 network standardises its input: StreamlinePriorReport needs statistics_loader "
                "(the training groups) to place and scale the sampled groups"
            )
        codes, means, scales, names = [], [], [], []
        for batch in self.statistics_loader:
            groups = self.prepare_batch(batch, device)[0]
            stats = self.stage1.input_statistics(groups)
            codes.append(self.stage1.index_quantize(groups).cpu())
            means.append(stats.mean.flatten(1).cpu())
            scales.append(stats.scale.flatten().cpu())
            batch_names = batch.get("name") if isinstance(batch, dict) else None
            names += [str(x) for x in batch_names] if batch_names is not None else [""] * len(groups)
        if not codes:
            raise ValueError("StreamlinePriorReport got an empty statistics_loader")
        return ReferenceStatistics(torch.cat(codes), torch.cat(means), torch.cat(scales), names)

    def write_samples(self, sampled: torch.Tensor, references: torch.Tensor, device: torch.device) -> dict:
        reference = self.reference_statistics(device)
        statistics, chosen, agreement = None, None, None
        if reference is not None:
            generator = torch.Generator().manual_seed(self.seed)
            statistics, chosen = choose_sample_statistics(sampled.cpu(), reference, self.sample_statistics, generator)
            statistics = InputStatistics(statistics.mean.to(device), statistics.scale.to(device))
            if self.sample_statistics != "mean":
                agreement = (sampled.cpu().flatten(1) == reference.codes[chosen].flatten(1)).double().mean(1)
        decoded = self.stage1.decode_samples(sampled.to(device), statistics).double().cpu()
        folder = Path(self.output_dir)
        samples = []
        for i, group in enumerate(decoded):
            path = save_bundle_tensor(folder / "samples" / f"sample_{i:03d}.trk", group, normalizer=self.normalizer)
            entry = {"file": str(path.relative_to(folder))}
            if chosen is not None and int(chosen[i]) >= 0:
                entry["statistics_from"] = reference.names[int(chosen[i])]
                if agreement is not None:
                    entry["code_agreement"] = float(agreement[i])
            samples.append(entry)
        # (3, S, P) groups side by side along the streamline axis -> one file with every sample
        save_bundle_tensor(folder / "samples.trk", torch.cat(list(decoded), dim=1), normalizer=self.normalizer)
        save_bundle_tensor(
            folder / "reference.trk", torch.cat(list(references.double()), dim=1), normalizer=self.normalizer
        )
        n = min(4, len(decoded), len(references))
        if n:
            save_streamline_render(
                [self.normalizer.denormalize(r) for r in references[:n].double()],
                [self.normalizer.denormalize(d) for d in decoded[:n]],
                folder / "samples.png",
                names=[f"group {i}" for i in range(n)],
                row_titles=("held-out data", "prior samples"),
                title=f"{self.method or 'stage 1'}: held-out groups (top) and groups sampled from the code prior (bottom), mm",
            )
        return {
            "figures": ["samples.png"] if n else [],
            "sample_statistics": self.sample_statistics
            if reference is not None
            else "none (network does not standardise)",
            "samples": samples,
            "units": "mm (RAS), via the training run's streamline normaliser",
        }
