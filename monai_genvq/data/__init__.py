"""Dataset discovery for the real on-disk layouts, generators that write those layouts, and sample builders."""

from monai_genvq.data.dipy_bundles import dipy_data_file, prepare_dipy_bundles
from monai_genvq.data.streamline_dataset import (
    StreamlineGroups,
    balance_samples,
    build_streamline_samples,
    group_streamlines,
    split_samples,
)
from monai_genvq.data.streamline_inference import streamline_inference_items
from monai_genvq.data.streamline_io import (
    SUPPORTED_STREAMLINE_EXTENSIONS,
    StreamlineFileError,
    load_streamlines,
    save_bundle_tensor,
    save_streamlines,
)
from monai_genvq.data.synthetic.streamlines import (
    SYNTHETIC_TRACTS,
    ensure_synthetic_tractoinferno,
    generate_synthetic_tractoinferno,
)
from monai_genvq.data.tractoinferno import default_cache_root, discover_tractoinferno, materialize_dataset
from monai_genvq.data.cardiac import (
    ACDC_TO_INTERNAL,
    CARDIAC_LABELS,
    MNMS_TO_INTERNAL,
    CardiacDataError,
    discover_acdc,
    discover_mnms,
    load_cardiac_ed,
    map_labels,
    read_acdc_info,
    read_mnms_csv,
)
from monai_genvq.data.synthetic.cardiac import (
    ensure_synthetic_acdc,
    ensure_synthetic_mnms,
    generate_synthetic_acdc,
    generate_synthetic_mnms,
    render_cardiac_phantom,
)
from monai_genvq.data.cardiac_datalist import CARDIAC_DATASETS, cardiac_datalists, resolve_cardiac_dataset
from monai_genvq.data.slices import SLICE_EXTENSIONS, SliceImageData, discover_slices
from monai_genvq.data.synthetic.cardiac_slices import (
    ensure_synthetic_slices,
    generate_synthetic_slices,
    synthetic_cardiac_slice,
)

__all__ = [
    "SUPPORTED_STREAMLINE_EXTENSIONS",
    "SYNTHETIC_TRACTS",
    "StreamlineFileError",
    "StreamlineGroups",
    "balance_samples",
    "build_streamline_samples",
    "default_cache_root",
    "dipy_data_file",
    "discover_tractoinferno",
    "ensure_synthetic_tractoinferno",
    "generate_synthetic_tractoinferno",
    "group_streamlines",
    "load_streamlines",
    "materialize_dataset",
    "prepare_dipy_bundles",
    "save_bundle_tensor",
    "save_streamlines",
    "split_samples",
    "streamline_inference_items",
    "SLICE_EXTENSIONS",
    "SliceImageData",
    "discover_slices",
    "ensure_synthetic_slices",
    "generate_synthetic_slices",
    "synthetic_cardiac_slice",
]
__all__ += [
    "ACDC_TO_INTERNAL",
    "CARDIAC_DATASETS",
    "CARDIAC_LABELS",
    "MNMS_TO_INTERNAL",
    "CardiacDataError",
    "cardiac_datalists",
    "discover_acdc",
    "discover_mnms",
    "ensure_synthetic_acdc",
    "ensure_synthetic_mnms",
    "generate_synthetic_acdc",
    "generate_synthetic_mnms",
    "load_cardiac_ed",
    "map_labels",
    "read_acdc_info",
    "read_mnms_csv",
    "render_cardiac_phantom",
    "resolve_cardiac_dataset",
]
from monai_genvq.data.anatomical_prior import anatomical_prior_datalists, decathlon_prior_datalists, location_prior, location_prior_from_dataset

__all__ += ["anatomical_prior_datalists", "decathlon_prior_datalists", "location_prior", "location_prior_from_dataset"]
from monai_genvq.data.synthetic.brain import BRAIN_LABELS, ensure_synthetic_brain, generate_synthetic_brain, render_brain_phantom

__all__ += ["BRAIN_LABELS", "ensure_synthetic_brain", "generate_synthetic_brain", "render_brain_phantom"]
from monai_genvq.data.volumes import LoadVolume, LoadVolumed, VolumeFileError, discover_volumes, load_volume, normalize_volume, save_segmentation  # noqa: E402
from monai_genvq.data.cryoet import discover_cryoet, read_mrc, write_mrc  # noqa: E402
from monai_genvq.data.synthetic.hierarchy_toy import (  # noqa: E402
    LEVEL_CLASSES,
    discover_hierarchy_toy,
    ensure_hierarchy_toy,
    generate_hierarchy_toy,
)

__all__ += [
    "LoadVolume", "LoadVolumed", "VolumeFileError", "discover_volumes", "load_volume", "normalize_volume", "save_segmentation",
    "discover_cryoet", "read_mrc", "write_mrc",
    "LEVEL_CLASSES", "discover_hierarchy_toy", "ensure_hierarchy_toy", "generate_hierarchy_toy",
]
from monai_genvq.data.brats import BRATS_LABEL_MAPS, BRATS_LAYOUTS, BraTSRegion, brats_region, discover_brats  # noqa: E402
from monai_genvq.data.synthetic.brats import ensure_synthetic_brats, generate_synthetic_brats  # noqa: E402

__all__ += ["BRATS_LABEL_MAPS", "BRATS_LAYOUTS", "BraTSRegion", "brats_region", "discover_brats",
            "ensure_synthetic_brats", "generate_synthetic_brats"]
from monai_genvq.data.synthetic.cryoet import CRYOET_CLASSES, ensure_synthetic_cryoet, generate_synthetic_cryoet  # noqa: E402

__all__ += ["CRYOET_CLASSES", "ensure_synthetic_cryoet", "generate_synthetic_cryoet"]
