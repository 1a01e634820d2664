"""Collection settings shared by tests/ and the package's doctests."""

import importlib.util

# the MONAI Label tasks and app import monailabel (an optional install: `make install-label`)
collect_ignore_glob = (
    []
    if importlib.util.find_spec("monailabel")
    else ["monai_genvq/apps/monai_label/app.py", "monai_genvq/apps/monai_label/tasks.py"]
)
