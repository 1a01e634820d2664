"""MONAI Label app and tasks over the monai-genvq bundles (optional: ``make install-label``).

The metadata reader (``spec``) needs nothing beyond the package. The tasks and the app import
``monailabel``: import them from their modules, ``monai_genvq.apps.monai_label.app`` (``GenVQApp``,
what an app folder's ``main.py`` imports) and ``monai_genvq.apps.monai_label.tasks``; both first keep
torchvision off the import path where it cannot load (:func:`keep_torchvision_off_import_path`,
see ``docs/monai_label.md``).
"""

from __future__ import annotations

from .spec import MonaiLabelSpec, read_monai_label_spec
from .torchvision_guard import keep_torchvision_off_import_path

__all__ = ["MonaiLabelSpec", "keep_torchvision_off_import_path", "read_monai_label_spec"]
