"""Shared plumbing of the pretraining algorithms: input checks, frozen-teacher bookkeeping, modes."""
from typing import List, Optional, Union

import torch
from mmaction.registry import MODELS
from mmengine.model import BaseModel
from torch import nn

from ivnext.compat import enable_non_blocking_copies
from .clip_geometry import ClipGeometry


class BasePretrainer(BaseModel):
    """Self-supervised pretraining algorithm in MMEngine's ``BaseModel`` form (mmpretrain's pattern).

    ``forward(inputs, data_samples, mode)`` dispatches to ``loss`` (dict of named loss terms),
    ``predict`` and ``tensor`` (encoder features). Frozen teachers registered with :meth:`freeze_teacher`
    stay in ``eval()``, receive no gradient, hold no trainable parameter (so no optimizer ever sees them)
    and, unless ``save_teacher``, are left out of saved checkpoints: they are rebuilt from their own
    weights when the algorithm is built, and loading a checkpoint without them keeps the built ones.

    Args:
        backbone: Encoder config (:class:`InternVideoNextViT`).
        data_preprocessor: mmaction2 ``ActionDataPreprocessor`` config.
        init_cfg: MMEngine init config.
    """

    def __init__(self, backbone: dict, data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='ActionDataPreprocessor', format_shape='NCTHW')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # Batches come from pinned memory (pin_memory=True in the recipes): copy them to the GPU without blocking
        # the host. mmaction2 1.2.0's ActionDataPreprocessor does not take MMEngine's `non_blocking` argument; this
        # goes once it does (then `non_blocking=True` in the configs). See ivnext.compat.
        enable_non_blocking_copies(self.data_preprocessor)
        self.backbone = MODELS.build(backbone)
        # Frames, size and patch are stated once, on the encoder; the other modules' grids derive from these.
        self.geometry = ClipGeometry.of(self.backbone)
        self._frozen_names: List[str] = []
        self._unsaved_names: List[str] = []
        self._register_state_dict_hook(_drop_unsaved_keys)
        self._register_load_state_dict_pre_hook(self._fill_unsaved_keys, with_module=False)

    # ---------------------------------------------------------------- teachers
    def freeze_teacher(self, name: str, save: bool = False) -> None:
        """Freeze submodule ``name``: eval mode, no grad, and (unless ``save``) not in checkpoints."""
        module: nn.Module = getattr(self, name)
        module.eval()
        module.requires_grad_(False)
        self._frozen_names.append(name)
        if not save:
            self._unsaved_names.append(name)

    def train(self, mode: bool = True) -> 'BasePretrainer':
        super().train(mode)
        for name in self._frozen_names:
            getattr(self, name).eval()
        return self

    def _fill_unsaved_keys(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Checkpoints hold no teacher weights: keep the built teacher's tensors when loading."""
        for name in self._unsaved_names:
            for key, value in getattr(self, name).state_dict().items():
                state_dict.setdefault(f'{prefix}{name}.{key}', value)

    # ------------------------------------------------------------------ inputs
    def flatten_clips(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, M, C, T, H, W) from ``ActionDataPreprocessor`` (M clips x crops) or (B, C, T, H, W)
        -> (B*M, C, T, H, W), checked against the encoder's ``num_frames`` / ``img_size``."""
        if inputs.dim() == 6:
            inputs = inputs.flatten(0, 1)
        elif inputs.dim() != 5:
            raise ValueError(f'inputs must be clips (B, C, T, H, W) or (B, M, C, T, H, W), got {tuple(inputs.shape)};'
                             " use FormatShape(input_format='NCTHW') in the pipeline")
        self.geometry.check_clips(inputs)
        return inputs

    def extract_feat(self, inputs: torch.Tensor) -> Union[torch.Tensor, tuple]:
        """Encoder features of full clips in the backbone's ``out_type``."""
        return self.backbone(self.flatten_clips(inputs))

    def place_frozen(self, device: torch.device) -> None:
        """Move frozen teachers to ``device`` if a wrapper left them elsewhere.

        Answers torch FSDP (MMEngine's ``FSDPStrategy``): with ``ignored_modules=['teacher']`` (the teacher
        replicated, not sharded) it moves only the modules it manages to ``device_id``, and the ignored teacher
        stays where the model was built (CPU). Called at every forward so that it holds under any runner and
        wrapper; once the teachers are in place it only compares one parameter's device per teacher (tensor
        metadata, no copy, no sync). It can go when the strategy moves ignored modules itself (or the recipes build
        the model on its device before wrapping).
        """
        for name in self._frozen_names:
            module = getattr(self, name)
            first = next(iter(module.parameters()), None)
            if first is not None and first.device != device:
                module.to(device)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None, mode: str = 'tensor'):
        self.place_frozen(inputs.device)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs)
        raise RuntimeError(f'invalid mode {mode!r}: use "loss", "predict" or "tensor"')


def _drop_unsaved_keys(module: BasePretrainer, state_dict: dict, prefix: str, local_metadata: dict) -> dict:
    for name in module._unsaved_names:
        head = f'{prefix}{name}.'
        for key in [k for k in state_dict if k.startswith(head)]:
            del state_dict[key]
    return state_dict
