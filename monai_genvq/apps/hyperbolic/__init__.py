"""Poincaré-ball VAE for unsupervised 3-D segmentation (Hsu et al. 2021): ball math on geoopt, wrapped and
Riemannian normals, gyroplane convolution, hierarchical triplet loss and sampler, Poincaré k-means,
whole-volume segmentation, toy / BraTS / cryo-ET data."""

from __future__ import annotations

from monai_genvq.apps.hyperbolic.brats import BRATS_LABEL_MAPS, BRATS_LAYOUTS, BraTSRegion, brats_region, discover_brats
from monai_genvq.apps.hyperbolic.cryoet import discover_cryoet
from monai_genvq.apps.hyperbolic.distributions import (
    riemannian_normal_log_normalizer,
    riemannian_normal_log_prob,
    riemannian_normal_radius_cdf,
    riemannian_normal_radius_log_density,
    riemannian_normal_rsample,
    riemannian_normal_sample_radius,
    wrapped_normal_log_prob,
    wrapped_normal_rsample,
)
from monai_genvq.apps.hyperbolic.figures import poincare_disk_2d
from monai_genvq.apps.hyperbolic.gyroplane import GyroplaneConv3d, GyroplaneLayer, gyroplane_conv3d, gyroplane_distance
from monai_genvq.apps.hyperbolic.inferer import HyperbolicClusterInferer, cluster_embedding
from monai_genvq.apps.hyperbolic.kmeans import (
    KMeansResult,
    assign_clusters,
    euclidean_kmeans,
    frechet_mean,
    pairwise_dist,
    poincare_kmeans,
)
from monai_genvq.apps.hyperbolic.losses import hierarchical_triplet_loss, reconstruction_nll
from monai_genvq.apps.hyperbolic.manifold import (
    BOUNDARY_EPS,
    MIN_NORM,
    MIN_SIGMA,
    as_curvature,
    bound_tangent0,
    boundary_radius,
    dist,
    expmap0,
    gmath,
    lambda_x,
    log_sinhc,
    logmap0,
    project,
)
from monai_genvq.apps.hyperbolic.segmentation import HyperbolicSegmentation, write_comparison_table
from monai_genvq.apps.hyperbolic.splits import split_test_records
from monai_genvq.apps.hyperbolic.synthetic_brats import ensure_synthetic_brats, generate_synthetic_brats
from monai_genvq.apps.hyperbolic.synthetic_cryoet import (
    CRYOET_CLASSES,
    ensure_synthetic_cryoet,
    generate_synthetic_cryoet,
    generate_synthetic_tomogram,
)
from monai_genvq.apps.hyperbolic.synthetic_toy import (
    LEVEL_CLASSES,
    discover_hierarchy_toy,
    ensure_hierarchy_toy,
    generate_hierarchy_toy,
    generate_hierarchy_volume,
    generate_textured_hierarchy_volume,
)
from monai_genvq.apps.hyperbolic.trainer import HyperbolicVAETrainer, hyperbolic_loss_terms
from monai_genvq.apps.hyperbolic.triplets import (
    TRIPLET_KEYS,
    TRIPLET_SAMPLINGS,
    TripletPatchSampler,
    TripletPatchSamplerd,
    check_volume,
)
from monai_genvq.apps.hyperbolic.vae import HyperbolicVAE, HyperbolicVAEOutput, patch_offsets

__all__ = [
    "BOUNDARY_EPS",
    "BRATS_LABEL_MAPS",
    "BRATS_LAYOUTS",
    "BraTSRegion",
    "CRYOET_CLASSES",
    "GyroplaneConv3d",
    "GyroplaneLayer",
    "HyperbolicClusterInferer",
    "HyperbolicSegmentation",
    "HyperbolicVAE",
    "HyperbolicVAEOutput",
    "HyperbolicVAETrainer",
    "KMeansResult",
    "LEVEL_CLASSES",
    "MIN_NORM",
    "MIN_SIGMA",
    "TRIPLET_KEYS",
    "TRIPLET_SAMPLINGS",
    "TripletPatchSampler",
    "TripletPatchSamplerd",
    "as_curvature",
    "assign_clusters",
    "bound_tangent0",
    "boundary_radius",
    "brats_region",
    "check_volume",
    "cluster_embedding",
    "discover_brats",
    "discover_cryoet",
    "discover_hierarchy_toy",
    "dist",
    "ensure_hierarchy_toy",
    "ensure_synthetic_brats",
    "ensure_synthetic_cryoet",
    "euclidean_kmeans",
    "expmap0",
    "frechet_mean",
    "generate_hierarchy_toy",
    "generate_hierarchy_volume",
    "generate_synthetic_brats",
    "generate_synthetic_cryoet",
    "generate_synthetic_tomogram",
    "generate_textured_hierarchy_volume",
    "gmath",
    "gyroplane_conv3d",
    "gyroplane_distance",
    "hierarchical_triplet_loss",
    "hyperbolic_loss_terms",
    "lambda_x",
    "log_sinhc",
    "logmap0",
    "pairwise_dist",
    "patch_offsets",
    "poincare_disk_2d",
    "poincare_kmeans",
    "project",
    "reconstruction_nll",
    "riemannian_normal_log_normalizer",
    "riemannian_normal_log_prob",
    "riemannian_normal_radius_cdf",
    "riemannian_normal_radius_log_density",
    "riemannian_normal_rsample",
    "riemannian_normal_sample_radius",
    "split_test_records",
    "wrapped_normal_log_prob",
    "wrapped_normal_rsample",
    "write_comparison_table",
]
