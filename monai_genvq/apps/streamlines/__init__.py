"""VQ-Diff and its baselines on white-matter streamline bundles: TractoInferno / dipy readers, .trk I/O,
synthetic tracts, streamline transforms, BUAN (dipy-exact, batched), evaluation report, prior samples, demo."""

from __future__ import annotations

from monai_genvq.apps.streamlines.buan import (
    BUANMetric,
    buan_dipy,
    bundle_adjacency_batched,
    resample_streamlines_batched,
    summarize_buan,
)
from monai_genvq.apps.streamlines.buan_handler import BUANHandler
from monai_genvq.apps.streamlines.dataset import (
    StreamlineGroups,
    balance_samples,
    build_streamline_samples,
    group_streamlines,
    split_samples,
)
from monai_genvq.apps.streamlines.dipy_bundles import dipy_data_file, prepare_dipy_bundles
from monai_genvq.apps.streamlines.figures import (
    SUBJECT_VIEWS,
    as_streamline_points,
    save_streamline_render,
    save_subject_render,
)
from monai_genvq.apps.streamlines.group_cache import default_group_cache_dir
from monai_genvq.apps.streamlines.group_order import apply_group_order, canonical_group_order, invert_group_order
from monai_genvq.apps.streamlines.inference import streamline_inference_items
from monai_genvq.apps.streamlines.io import (
    SUPPORTED_STREAMLINE_EXTENSIONS,
    StreamlineFileError,
    check_unique_streamline_outputs,
    count_streamlines,
    load_streamlines,
    save_bundle_tensor,
    save_streamlines,
    streamline_stem,
)
from monai_genvq.apps.streamlines.prior_report import (
    SAMPLE_STATISTICS,
    ReferenceStatistics,
    StreamlinePriorReport,
    choose_sample_statistics,
)
from monai_genvq.apps.streamlines.report import StreamlineEvaluationReport, latent_perturbation_buan
from monai_genvq.apps.streamlines.samples import StreamlineSamples
from monai_genvq.apps.streamlines.synthetic import (
    SYNTHETIC_TRACTS,
    ensure_synthetic_tractoinferno,
    generate_synthetic_tractoinferno,
)
from monai_genvq.apps.streamlines.tractoinferno import (
    VQDIFF_TABLE1_BUNDLES,
    discover_tractoinferno,
    select_bundles_by_count,
)
from monai_genvq.apps.streamlines.transforms import (
    NormalizeStreamlines,
    NormalizeStreamlinesd,
    ResampleStreamlines,
    ResampleStreamlinesd,
    StreamlineNormalizer,
    StreamlinesToBundleTensor,
    StreamlinesToBundleTensord,
    bundle_tensor_to_streamlines,
    resample_streamlines,
    streamlines_to_bundle_tensor,
)
from monai_genvq.apps.streamlines.writer import StreamlineWriter

__all__ = [
    "BUANHandler",
    "BUANMetric",
    "NormalizeStreamlines",
    "NormalizeStreamlinesd",
    "ReferenceStatistics",
    "ResampleStreamlines",
    "ResampleStreamlinesd",
    "SAMPLE_STATISTICS",
    "SUBJECT_VIEWS",
    "SUPPORTED_STREAMLINE_EXTENSIONS",
    "SYNTHETIC_TRACTS",
    "StreamlineEvaluationReport",
    "StreamlineFileError",
    "StreamlineGroups",
    "StreamlineNormalizer",
    "StreamlinePriorReport",
    "StreamlineSamples",
    "StreamlineWriter",
    "StreamlinesToBundleTensor",
    "StreamlinesToBundleTensord",
    "VQDIFF_TABLE1_BUNDLES",
    "apply_group_order",
    "as_streamline_points",
    "balance_samples",
    "buan_dipy",
    "build_streamline_samples",
    "bundle_adjacency_batched",
    "bundle_tensor_to_streamlines",
    "canonical_group_order",
    "check_unique_streamline_outputs",
    "choose_sample_statistics",
    "count_streamlines",
    "default_group_cache_dir",
    "dipy_data_file",
    "discover_tractoinferno",
    "ensure_synthetic_tractoinferno",
    "generate_synthetic_tractoinferno",
    "group_streamlines",
    "invert_group_order",
    "latent_perturbation_buan",
    "load_streamlines",
    "prepare_dipy_bundles",
    "resample_streamlines",
    "resample_streamlines_batched",
    "save_bundle_tensor",
    "save_streamline_render",
    "save_streamlines",
    "save_subject_render",
    "select_bundles_by_count",
    "split_samples",
    "streamline_inference_items",
    "streamline_stem",
    "streamlines_to_bundle_tensor",
    "summarize_buan",
]
