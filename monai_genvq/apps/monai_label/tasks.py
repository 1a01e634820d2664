"""MONAI Label tasks over monai-genvq bundles: MONAI Label's bundle tasks, with what our bundles need.

``GenVQInferTask`` is ``BundleInferTask`` serving the bundle's label map under the label names of
its metadata (``monai_label.labels``), 2-D results without the channel axis. ``GenVQTrainTask`` is
``BundleTrainTask`` that trains each request into a new run folder, runs every training stage the
metadata lists, trains unsupervised bundles on every image (labels, where present, only validate),
and publishes the trained model to ``<bundle>/models/model.pt``, the file the infer task loads.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import monai.bundle
import mrcfile
import nibabel as nib
import numpy as np
import torch

from monai_genvq.data.mrc import is_mrc, write_mrc

from .spec import read_monai_label_spec
from .torchvision_guard import keep_torchvision_off_import_path

keep_torchvision_off_import_path()  # before monailabel.tasks.infer.bundle, which imports torchvision.utils

from monailabel.interfaces.tasks.infer_v2 import InferType  # noqa: E402
from monailabel.tasks.infer.bundle import BundleInferTask  # noqa: E402
from monailabel.tasks.train.bundle import BundleTrainTask  # noqa: E402

__all__ = ["GenVQInferTask", "GenVQTrainTask", "DropChannelAxisd", "publish_model"]

logger = logging.getLogger(__name__)


class DropChannelAxisd:
    """Drop the leading channel axis of a ``dimension``-D label map ((1, H, W) -> (H, W)); other shapes pass.

    MONAI Label's ``Restored`` keeps a 2-D result as (1, H, W), which its writer stores as a 3-D image
    with one row: the viewer then misplaces it on the (H, W) input.

    Args:
        key: the result's key.
        dimension: spatial dimensions of the model's input.

    Example:
        >>> import numpy as np
        >>> DropChannelAxisd("pred", 2)({"pred": np.zeros((1, 4, 5))})["pred"].shape
        (4, 5)
    """

    def __init__(self, key: str = "pred", dimension: int = 2) -> None:
        self.key, self.dimension = key, int(dimension)

    def __call__(self, data: dict) -> dict:
        d = dict(data)
        x = d[self.key]
        if x.ndim == self.dimension + 1 and x.shape[0] == 1:
            d[self.key] = x[0]
        return d


def publish_model(source: str | os.PathLike, bundle: str | os.PathLike) -> str:
    """Copy a trained checkpoint to ``<bundle>/models/model.pt``, write-first (a reader never sees half a file).

    Args:
        source: the checkpoint the training run left.
        bundle: the bundle folder served by MONAI Label.

    Returns:
        the published path.

    Example:
        >>> publish_model("outputs/monai_label/run/models/model.pt", "bundles/hyperbolic_brats_seg")  # doctest: +SKIP
        'bundles/hyperbolic_brats_seg/models/model.pt'
    """
    if not os.path.isfile(source):
        raise FileNotFoundError(f"the training run left no checkpoint '{source}'; nothing was published")
    target = os.path.join(str(bundle), "models", "model.pt")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{target}.publishing-{os.getpid()}"
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return target


class GenVQInferTask(BundleInferTask):
    """MONAI Label's ``BundleInferTask`` for a monai-genvq segmentation bundle.

    Args:
        path: the bundle folder (with ``models/model.pt``).
        conf: the MONAI Label app's configuration.
        kwargs: passed to ``BundleInferTask``.

    Example:
        >>> task = GenVQInferTask("bundles/hyperbolic_brats_seg", {})  # doctest: +SKIP
        >>> task.labels  # doctest: +SKIP
        {'cluster 1': 1, 'cluster 2': 2, 'cluster 3': 3, 'cluster 4': 4}
    """

    def __init__(self, path: str, conf: dict[str, str], **kwargs: Any) -> None:
        self.spec = read_monai_label_spec(path)
        if not self.spec.served:
            raise ValueError(f"bundle '{path}' is not a segmentation model: {self.spec['why']}")
        super().__init__(path, conf, type=InferType.SEGMENTATION, **kwargs)
        if self.valid:
            # the metadata's network_data_format describes the exported network's raw output (logits or
            # an embedding); the served label map's names are those of the monai_label section
            self.labels = dict(self.spec["labels"])

    def post_transforms(self, data: Any = None) -> Sequence[Callable]:
        return [*super().post_transforms(data), DropChannelAxisd(self.key_pred, self.dimension)]

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
        # a NIfTI result gets the input file's own affine and header (qform/sform codes, pixdim): MONAI
        # Label's default (ITK) path writes a 2-D result without its affine, and its nibabel path fails
        # under MONAI 1.6 (it asks MONAI's writer to resample to an unset original affine)
        path = str(data.get("image_path") or "")
        pred = data[self.output_label_key]
        array = np.asarray(pred.detach().cpu() if isinstance(pred, torch.Tensor) else pred)
        if is_mrc(path):  # a tomogram: the input's array layout, voxel size and origin
            with mrcfile.mmap(path, mode="r", permissive=True) as source:
                shape, vs, origin = source.data.shape, source.voxel_size, source.header.origin
            if array.shape != shape:
                raise ValueError(f"the result has shape {array.shape}, not the shape {shape} of '{path}'")
            out = tempfile.NamedTemporaryFile(suffix=".mrc", delete=False).name
            zyx = (float(vs.z), float(vs.y), float(vs.x)), (float(origin.z), float(origin.y), float(origin.x))
            write_mrc(out, array.astype(np.int16), voxel_size=zyx[0], origin=zyx[1])
            return out, data.get(self.output_json_key, {})
        ext = extension or data.get("result_extension") or ("".join(Path(path).suffixes[-2:]) if path else "")
        if ext not in (".nii", ".nii.gz") or not path.endswith((".nii", ".nii.gz")):
            return super().writer(data, extension, dtype)
        source = nib.load(path)
        if array.shape != source.shape:
            raise ValueError(f"the result has shape {array.shape}, not the shape {source.shape} of '{path}'")
        out_dtype = np.dtype(dtype or data.get("result_dtype") or np.uint8)
        header = source.header.copy()
        header.set_data_dtype(out_dtype)
        header["scl_slope"], header["scl_inter"] = 1.0, 0.0
        out = tempfile.NamedTemporaryFile(suffix=ext, delete=False).name
        nib.save(nib.Nifti1Image(array.astype(out_dtype), source.affine, header), out)
        return out, data.get(self.output_json_key, {})


class GenVQTrainTask(BundleTrainTask):
    """MONAI Label's ``BundleTrainTask`` for a monai-genvq segmentation bundle.

    Each request trains into a new folder ``<bundle>/outputs/monai_label/<time>`` (so the run guard of
    the bundle never refuses it and earlier runs stay), runs the stages of ``monai_label.train_configs``
    (``anatomical_prior_seg``: the shape prior from the label maps, then the image model), and
    publishes ``monai_label.trained_model`` of that run to ``<bundle>/models/model.pt``. For
    ``trains_from: images`` (unsupervised bundles) every image of the datastore trains; the validation
    split is drawn from the labelled ones (validation scores against labels).

    Args:
        path: the bundle folder.
        conf: the MONAI Label app's configuration.
        kwargs: passed to ``BundleTrainTask``.

    Example:
        >>> task = GenVQTrainTask("bundles/hyperbolic_brats_seg", {})  # doctest: +SKIP
    """

    def __init__(self, path: str, conf: dict[str, str], **kwargs: Any) -> None:
        self.spec = read_monai_label_spec(path)
        if not self.spec.served:
            raise ValueError(f"bundle '{path}' is not a segmentation model: {self.spec['why']}")
        super().__init__(path, conf, **kwargs)
        self.run_dir: str | None = None

    def _fetch_datalist(self, request: dict, datastore: Any) -> list[dict]:
        labelled = super()._fetch_datalist(request, datastore)
        if self.spec["trains_from"] != "images":
            return labelled
        by_image = {d["image"]: d for d in labelled}
        records = []
        for image_id in datastore.list_images():
            uri = datastore.get_image_uri(image_id)
            records.append(by_image.get(uri, {"image": uri}))
        logger.info(f"{len(records)} images for unsupervised training, {len(labelled)} of them labelled")
        return records

    def _partition_datalist(self, datalist: list[dict], request: dict, shuffle: bool = False) -> tuple:
        labelled = [d for d in datalist if d.get("label")]
        unlabelled = [d for d in datalist if not d.get("label")]
        if labelled:
            train, val = super()._partition_datalist(labelled, request, shuffle)
        else:
            train, val = [], (None if request.get("val_split", 0.2) < 0 else [])
        return unlabelled + list(train), val

    def _load_checkpoint(self, model_pytorch: str, pretrained: bool, train_handlers: list) -> None:
        if self.spec.get("pretrained", True):
            super()._load_checkpoint(model_pytorch, pretrained, train_handlers)
        elif pretrained:
            logger.info(
                f"{os.path.basename(self.bundle_path)} trains from scratch (its stages cannot start from models/model.pt)"
            )

    def _update_overrides(self, overrides: dict) -> dict:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = os.path.join(self.bundle_path, "outputs", "monai_label", stamp)
        suffix = 1
        while os.path.exists(self.run_dir):
            self.run_dir = os.path.join(self.bundle_path, "outputs", "monai_label", f"{stamp}-{suffix}")
            suffix += 1
        overrides["output_dir"] = self.run_dir
        overrides["progress_bar"] = False
        return overrides

    def run_single_gpu(self, request: dict, overrides: dict) -> None:
        configs = os.path.dirname(self.bundle_config_path)
        for stage in self.spec["train_configs"]:
            files = [os.path.join(configs, f) for f in stage]
            logger.info(f"training stage {stage} into {self.run_dir}")
            monai.bundle.run(
                run_id=request.get("run_id", "run"),
                meta_file=self.bundle_metadata_path,
                config_file=files if len(files) > 1 else files[0],
                **overrides,
            )

    def __call__(self, request: dict, datastore: Any) -> dict:
        result = super().__call__(request, datastore)
        if self.run_dir is None:
            raise RuntimeError(f"training of {self.bundle_path} did not start")
        published = publish_model(os.path.join(self.run_dir, self.spec["trained_model"]), self.bundle_path)
        logger.info(f"published {published} (trained in {self.run_dir})")
        return result
