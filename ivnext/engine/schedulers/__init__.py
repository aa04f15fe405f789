"""Parameter schedulers registered in mmaction2's PARAM_SCHEDULERS."""
from .closed_form_linear_lr import ClosedFormLinearLR

__all__ = ['ClosedFormLinearLR']
