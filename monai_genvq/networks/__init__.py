"""Networks: the ResNet autoencoder and its pluggable bottlenecks."""

from .bottlenecks import *  # noqa: F401,F403
from .nets import *  # noqa: F401,F403
from .priors import *  # noqa: F401,F403
from .hyperbolic import *  # noqa: F401,F403
from .intensity_embedding import IntensityEmbedding  # noqa: F401
from .export import TensorOutputNetwork, network_tensor  # noqa: E402,F401
