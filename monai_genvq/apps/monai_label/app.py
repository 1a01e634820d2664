"""A MONAI Label app serving the monai-genvq segmentation bundles."""

from __future__ import annotations

import logging
import os
from typing import Any

from monailabel.interfaces.app import MONAILabelApp

from .spec import read_monai_label_spec
from .tasks import GenVQInferTask, GenVQTrainTask

__all__ = ["GenVQApp", "find_bundles"]

logger = logging.getLogger(__name__)


def find_bundles(bundles_dir: str, names: str = "all") -> dict[str, str]:
    """The bundle folders of ``bundles_dir`` MONAI Label can serve (``monai_label.served_as: segmentation``).

    Args:
        bundles_dir: a folder of bundles (e.g. the repository's ``bundles/``).
        names: ``"all"`` or comma-separated bundle names (asking for an unserved one is an error saying why).

    Example:
        >>> sorted(find_bundles("bundles"))  # doctest: +SKIP
        ['anatomical_prior_seg', 'hyperbolic_brats_seg', 'hyperbolic_cryoet_seg', 'hyperbolic_toy_seg']
    """
    if not os.path.isdir(bundles_dir):
        raise FileNotFoundError(f"bundles folder '{bundles_dir}' does not exist (set --conf bundles <folder>)")
    found = sorted(
        d for d in os.listdir(bundles_dir) if os.path.isfile(os.path.join(bundles_dir, d, "configs", "metadata.json"))
    )
    wanted = found if names in ("", "all") else [n.strip() for n in names.split(",") if n.strip()]
    served = {}
    for name in wanted:
        path = os.path.join(bundles_dir, name)
        if name not in found:
            raise ValueError(f"no bundle '{name}' in '{bundles_dir}' (it has {found})")
        spec = read_monai_label_spec(path)
        if spec.served:
            served[name] = path
        elif names not in ("", "all"):
            raise ValueError(f"bundle '{name}' is not served by MONAI Label: {spec['why']}")
        else:
            logger.info(f"not served: {name}: {spec['why']}")
    return served


class GenVQApp(MONAILabelApp):
    """MONAI Label app over the monai-genvq segmentation bundles (inference and training).

    Configuration (``--conf key value``): ``bundles`` (the folder of bundles; default
    ``$GENVQ_BUNDLES`` or ``<app_dir>/bundles``), ``models`` (``all`` or comma-separated names).
    A bundle is served for inference once ``<bundle>/models/model.pt`` exists (after a ``/train/``
    request, restart the server to serve a bundle that had no weights before).

    Args:
        app_dir: the app folder (holding the ``main.py`` that imports this class).
        studies: the studies folder or datastore address.
        conf: the ``--conf`` pairs.

    Example:
        ``main.py`` of an app folder: ``from monai_genvq.apps.monai_label.app import GenVQApp  # noqa: F401``, then
        ``monailabel start_server --app <folder> --studies <images> --conf bundles <monai-genvq>/bundles``.
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        conf = conf or {}
        self.bundles_dir = conf.get("bundles") or os.environ.get("GENVQ_BUNDLES") or os.path.join(app_dir, "bundles")
        self.bundle_paths = find_bundles(self.bundles_dir, conf.get("models", "all"))
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="monai-genvq",
            description="Unsupervised segmentation bundles of monai-genvq (hyperbolic VAE, anatomical-prior VAE)",
        )

    def init_infers(self) -> dict[str, Any]:
        infers = {}
        for name, path in self.bundle_paths.items():
            if not os.path.isfile(os.path.join(path, "models", "model.pt")):
                logger.warning(f"{name}: no models/model.pt yet; train it (/train/{name}) and restart to serve it")
                continue
            task = GenVQInferTask(path, self.conf)
            if task.is_valid():
                infers[name] = task
        return infers

    def init_trainers(self) -> dict[str, Any]:
        return {name: GenVQTrainTask(path, self.conf) for name, path in self.bundle_paths.items()}
