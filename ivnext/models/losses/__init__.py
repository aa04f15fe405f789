"""losses."""
from .cosine_similarity_loss import CosineSimilarityLoss, cosine_distance
from .gaussian_likelihood import discretized_gaussian_log_likelihood, normal_kl
from .video_text_contrastive_loss import VideoTextContrastiveLoss, gather_with_grad

__all__ = ['CosineSimilarityLoss', 'cosine_distance', 'discretized_gaussian_log_likelihood', 'normal_kl',
           'VideoTextContrastiveLoss', 'gather_with_grad']
