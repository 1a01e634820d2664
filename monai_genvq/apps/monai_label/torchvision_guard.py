"""Keep torchvision off the MONAI Label server's import path where it cannot load.

MONAI Label 0.8.5 imports ``torchvision.utils`` at the top of ``monailabel.transform.post``, which its
``BundleInferTask`` imports; the two functions it takes (``make_grid``, ``save_image``) are used only
to write PNG previews of 2-D RGB (pathology / endoscopy) results, never for a NIfTI segmentation.
PyPI's torchvision cannot load beside a CPU-only torch wheel ("operator torchvision::nms does not
exist"), and ``make install-label`` does not install it (requirements/label.txt says why).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import logging
import sys
import types

__all__ = ["keep_torchvision_off_import_path"]

logger = logging.getLogger(__name__)

_WHY = (
    "torchvision is not available beside this torch build (not installed, or PyPI's wheel that cannot load "
    "beside a CPU-only torch); MONAI Label needs it only for PNG previews of 2-D RGB results, which the "
    "monai-genvq bundles do not produce"
)


def _missing(*args: object, **kwargs: object) -> None:
    raise ImportError(_WHY)


def keep_torchvision_off_import_path() -> bool:
    """Import torchvision if it loads; otherwise register a stand-in whose two functions raise ``ImportError``.

    The stand-in has ``__version__ = "0+unavailable"`` so that MONAI's ``optional_import`` version checks
    treat torchvision as absent; any other attribute raises ``AttributeError`` naming the reason.

    Returns:
        True when the stand-in was registered, False when the real torchvision is used.

    Example:
        >>> keep_torchvision_off_import_path()  # doctest: +SKIP
        True
    """
    current = sys.modules.get("torchvision")
    if current is not None:
        return bool(getattr(current, "__genvq_stand_in__", False))
    try:
        importlib.import_module("torchvision.utils")
        return False
    except Exception as exc:  # ModuleNotFoundError, or the C-extension RuntimeError of a mismatched wheel
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        if not isinstance(exc, ModuleNotFoundError):
            logger.warning(
                "torchvision is installed but does not load (%s: %s); using a stand-in", type(exc).__name__, exc
            )

    def _no_attribute(name: str) -> object:
        raise AttributeError(f"torchvision.{name}: {_WHY}")

    package = types.ModuleType("torchvision", _WHY)
    package.__spec__ = importlib.machinery.ModuleSpec("torchvision", None, is_package=True)
    package.__path__ = []
    package.__version__ = "0+unavailable"
    package.__genvq_stand_in__ = True
    utils = types.ModuleType("torchvision.utils", _WHY)
    utils.__spec__ = importlib.machinery.ModuleSpec("torchvision.utils", None)
    utils.make_grid = utils.save_image = _missing
    package.utils = utils
    package.__getattr__ = _no_attribute
    sys.modules["torchvision"], sys.modules["torchvision.utils"] = package, utils
    return True
