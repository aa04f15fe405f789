"""heads."""
from .alignment_head import AlignmentHead, PooledAlignmentHead  # noqa: F401,E402
from .conditional_diffusion_head import ConditionalDiffusionHead  # noqa: F401,E402
from .linear_pixel_head import LinearPixelHead  # noqa: F401,E402
from .attentive_probe_head import AttentiveProbeHead  # noqa: F401
from .linear_probe_head import LinearProbeHead  # noqa: F401
from .latent_regression_head import LatentRegressionHead  # noqa: F401
from .probe_sweep_head import ProbeSweepHead  # noqa: F401
