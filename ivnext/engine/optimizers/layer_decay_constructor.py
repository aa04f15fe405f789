"""Layer-wise learning-rate decay for fine-tuning ViT encoders inside mmaction2 recognizers."""
import json
from typing import Dict, List, Sequence

from mmaction.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.dist import get_dist_info
from mmengine.logging import MMLogger
from torch import nn

from .trainable_constructor import TrainableOptimWrapperConstructor

# Parameters named like these get no weight decay (besides every 1-D parameter and every bias).
DEFAULT_NO_DECAY = ('cls_token', 'pos_embed', 'gamma', 'norm', 'query_tokens')


def get_vit_layer_id(name: str, num_layers: int, prefix: str = 'backbone.') -> int:
    """Layer id of a recognizer parameter for layer-wise lr decay.

    patch embedding, CLS tokens and position table -> 0; ``blocks.i`` -> i + 1; everything else (the
    clip projector, necks, heads) -> ``num_layers + 1``.

    Args:
        name: Parameter name in the recognizer, e.g. ``backbone.blocks.3.attn.qkv.weight``.
        num_layers: Number of encoder blocks.
        prefix: Prefix of the encoder's parameters.

    Returns:
        int: Layer id in [0, num_layers + 1].
    """
    if not name.startswith(prefix):
        return num_layers + 1
    name = name[len(prefix):]
    if name.startswith(('patch_embed.', 'cls_token', 'pos_embed', 'mask_token')):
        return 0
    if name.startswith('blocks.'):
        return int(name.split('.')[1]) + 1
    return num_layers + 1


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(TrainableOptimWrapperConstructor):
    """AdamW param groups with layer-wise lr decay (BEiT / MAE fine-tuning recipe).

    A parameter of layer id ``i`` (see :func:`get_vit_layer_id`) gets
    ``lr = base_lr * layer_decay_rate ** (num_layers + 1 - i)``: the head trains at ``base_lr``, the
    last block at ``base_lr * rate``, the patch embedding at ``base_lr * rate ** (num_layers + 1)``.
    1-D parameters (norms, LayerScale ``gamma``), biases and names containing ``no_decay_names`` get
    weight decay 0. Frozen parameters are skipped.

    ``paramwise_cfg`` keys:
        layer_decay_rate (float): 0.75 for ViT-B, 0.85 for ViT-L (default 0.75).
        num_layers (int): Encoder depth; read from ``model.backbone.num_layers`` when absent.
        backbone_prefix (str): Prefix of encoder parameters (default ``'backbone.'``).
        no_decay_names (Sequence[str]): Name fragments without weight decay (default
            ``('cls_token', 'pos_embed', 'gamma', 'norm', 'query_tokens')``).

    Each param group carries ``lr``, ``weight_decay``, ``lr_scale``, ``layer_id`` and ``param_names``;
    MMEngine's schedulers scale every group from its own initial lr, so the per-layer ratios persist.
    """

    KNOWN_KEYS = ('layer_decay_rate', 'num_layers', 'backbone_prefix', 'no_decay_names')

    def _validate_cfg(self) -> None:
        unknown = set(self.paramwise_cfg) - set(self.KNOWN_KEYS)
        if unknown:
            raise KeyError(f'LayerDecayOptimWrapperConstructor paramwise_cfg does not take {sorted(unknown)}; '
                           f'known keys: {self.KNOWN_KEYS}')
        rate = self.paramwise_cfg.get('layer_decay_rate', 0.75)
        if not 0 < rate <= 1:
            raise ValueError(f'paramwise_cfg.layer_decay_rate must be in (0, 1], got {rate}')
        if self.base_lr is None:
            raise ValueError('optim_wrapper.optimizer needs an `lr` for layer-wise lr decay')

    def _num_layers(self, module: nn.Module) -> int:
        if 'num_layers' in self.paramwise_cfg:
            return int(self.paramwise_cfg['num_layers'])
        backbone = getattr(module, 'backbone', None)
        if backbone is None or not hasattr(backbone, 'num_layers'):
            raise ValueError('set optim_wrapper.paramwise_cfg.num_layers: the model has no backbone.num_layers')
        return int(backbone.num_layers)

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        """Add one param group per (layer id, decay / no decay) to ``params``."""
        rate = self.paramwise_cfg.get('layer_decay_rate', 0.75)
        prefix = self.paramwise_cfg.get('backbone_prefix', 'backbone.')
        no_decay_names: Sequence[str] = self.paramwise_cfg.get('no_decay_names', DEFAULT_NO_DECAY)
        num_layers = self._num_layers(module)
        weight_decay = self.base_wd or 0.0
        groups: Dict[str, dict] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            no_decay = (param.ndim <= 1 or name.endswith('.bias')
                        or any(part in name for part in no_decay_names))
            layer_id = get_vit_layer_id(name, num_layers, prefix)
            key = f'layer_{layer_id}_{"no_decay" if no_decay else "decay"}'
            if key not in groups:
                scale = rate**(num_layers + 1 - layer_id)
                groups[key] = dict(params=[], param_names=[], layer_id=layer_id, lr_scale=scale,
                                   lr=self.base_lr * scale, weight_decay=0.0 if no_decay else weight_decay)
            groups[key]['params'].append(param)
            groups[key]['param_names'].append(name)
        rank, _ = get_dist_info()
        if rank == 0:
            summary = {k: dict(lr_scale=g['lr_scale'], weight_decay=g['weight_decay'], params=len(g['params']))
                       for k, g in sorted(groups.items(), key=lambda kv: kv[1]['layer_id'])}
            MMLogger.get_current_instance().info(
                f'layer-wise lr decay {rate} over {num_layers} layers: {json.dumps(summary)}')
        params.extend(sorted(groups.values(), key=lambda g: (g['layer_id'], g['weight_decay'])))
