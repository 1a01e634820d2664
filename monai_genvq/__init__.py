"""monai-genvq: a MONAI plugin for generative representation learning on medical data."""

__version__ = "0.1.0"
