from .hyperbolic import hierarchical_triplet_loss, reconstruction_nll  # noqa: E402
