"""Command-line demos that drive the bundles end to end (``python -m monai_genvq.demo.<name>``)."""
