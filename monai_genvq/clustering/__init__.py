"""Clustering of latent embeddings: Poincaré-ball k-means with Fréchet means, Euclidean k-means."""

from .poincare_kmeans import KMeansResult, assign_clusters, euclidean_kmeans, frechet_mean, pairwise_dist, poincare_kmeans

__all__ = ["KMeansResult", "assign_clusters", "euclidean_kmeans", "frechet_mean", "pairwise_dist", "poincare_kmeans"]
