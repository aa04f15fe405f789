"""A config's model at a measured clip shape: read the config, find its encoders, set their shape, build it.

Shared by ``tools/analysis/benchmark.py``, ``get_flops.py`` and ``estimate_memory.py``.
"""
import copy
import inspect
from typing import Any, Dict, List, Optional, Tuple

from torch import nn


def load_config(path: str, cfg_options: Optional[Dict[str, Any]] = None):
    """Read an MMEngine config and apply ``cfg_options`` (``--cfg-options``)."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def default_kwargs(type_name: Any) -> Dict[str, Any]:
    """Constructor defaults of a registered model type (empty when unknown)."""
    from mmaction.registry import MODELS
    cls = MODELS.get(type_name) if isinstance(type_name, str) else type_name
    if cls is None or not inspect.isclass(cls):
        return {}
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def is_encoder_cfg(cfg: Any) -> bool:
    """Whether ``cfg`` is the config of a registered type taking ``num_frames`` (an encoder)."""
    return isinstance(cfg, dict) and 'num_frames' in default_kwargs(cfg.get('type'))


def encoder_cfgs(model_cfg: Dict) -> List[Dict]:
    """Every encoder-like sub-config (a registered type taking ``num_frames``): the backbone and the like."""
    found = []
    if is_encoder_cfg(model_cfg):
        found.append(model_cfg)
    for key, value in model_cfg.items():
        if isinstance(value, dict) and key != 'data_preprocessor':
            found.extend(encoder_cfgs(value))
    return found


def main_encoder_cfg(model_cfg: Dict) -> Optional[Dict]:
    """The backbone's config if the model has one, else the model itself if it is an encoder."""
    if isinstance(model_cfg.get('backbone'), dict):
        return model_cfg['backbone']
    return model_cfg if is_encoder_cfg(model_cfg) else None


def clip_shape(model_cfg: Dict, num_frames: Optional[int], img_size: Optional[int]) -> Tuple[int, int]:
    """Frames and crop side: the arguments, else the backbone config, else its defaults, else 16 x 224."""
    enc = main_encoder_cfg(model_cfg) or {}
    defaults = default_kwargs(enc.get('type')) if enc else {}
    t = num_frames or enc.get('num_frames') or defaults.get('num_frames') or 16
    s = img_size or enc.get('img_size') or defaults.get('img_size') or 224
    return int(t), int(s)


def set_clip_shape(model_cfg: Dict, num_frames: int, img_size: int, with_cp: bool) -> None:
    """Build the encoders (student and same-family teachers) at the measured clip shape, in place.

    Raises:
        ValueError: ``with_cp`` for a model whose backbone takes no ``with_cp`` argument.
    """
    for enc in encoder_cfgs(model_cfg):
        enc['num_frames'] = num_frames
        if 'img_size' in default_kwargs(enc.get('type')):
            enc['img_size'] = img_size
    main = main_encoder_cfg(model_cfg)
    if with_cp:
        if main is None or 'with_cp' not in default_kwargs(main.get('type')):
            raise ValueError('--with-cp needs a backbone with a `with_cp` argument')
        main['with_cp'] = True


def build_model(model_cfg: Dict, default_scope: str = 'mmaction') -> nn.Module:
    """``MODELS.build`` of a copy of ``model_cfg`` inside the config's default scope."""
    from mmaction.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(default_scope):
        return MODELS.build(copy.deepcopy(model_cfg))


def num_classes_of(model_cfg: Dict) -> int:
    """Classes of the model's ``cls_head`` (2 when it has none)."""
    head = model_cfg.get('cls_head') or {}
    return int(head.get('num_classes', 2)) if isinstance(head, dict) else 2
