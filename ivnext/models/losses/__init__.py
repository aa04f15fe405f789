"""losses."""
from .cosine_similarity_loss import CosineSimilarityLoss, cosine_distance
from .gaussian_likelihood import discretized_gaussian_log_likelihood, normal_kl

__all__ = ['CosineSimilarityLoss', 'cosine_distance', 'discretized_gaussian_log_likelihood', 'normal_kl']
