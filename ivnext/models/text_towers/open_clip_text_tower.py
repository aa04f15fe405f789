"""Frozen text tower from open_clip (MobileCLIP's, the text encoder of the authors' alignment recipe)."""
from typing import Dict, List, Optional

import torch
from mmaction.registry import MODELS

from .base_text_tower import FrozenTextTower


@MODELS.register_module()
class OpenCLIPTextTower(FrozenTextTower):
    """The text half of an open_clip model, frozen: ``model.encode_text`` on its own tokenizer's tokens.

    The authors align InternVideo-Next to MobileCLIP's text tower (answer in OpenGVLab/InternVideo #318, as for
    InternVideo2-L); open_clip ships MobileCLIP (``'MobileCLIP-B'``, ``'MobileCLIP-S2'``, ...). open_clip is an
    optional extra (``pip install open_clip_torch``); the weights are read from a local file, never downloaded.
    Only the text half is kept: the image tower is dropped after loading.

    Args:
        model_name: open_clip architecture name, e.g. ``'MobileCLIP-B'``.
        pretrained: Local weights file of that architecture (open_clip's ``pretrained=`` path).
        batch_size: Captions per forward pass.
        cache_size: Captions whose features are cached (0: off).
    """

    def __init__(self, model_name: str, pretrained: Optional[str] = None, batch_size: int = 256,
                 cache_size: int = 1_000_000):
        super().__init__(batch_size=batch_size, cache_size=cache_size)
        try:
            import open_clip
        except ImportError as err:
            raise ImportError(f'OpenCLIPTextTower (model_name={model_name!r}) needs open_clip, an optional extra: '
                              "pip install 'ivnext[mobileclip]' (or pip install open_clip_torch); or use "
                              "type='TransformersTextTower' with a CLIP / SigLIP / BERT-style folder") from err
        self.model_name, self.pretrained = model_name, pretrained
        model = open_clip.create_model(model_name, pretrained=pretrained, device='cpu')
        for name in ('visual', 'image_encoder'):  # the image tower is not needed
            if hasattr(model, name):
                setattr(model, name, None)
        self.model = model
        self.tokenizer = open_clip.get_tokenizer(model_name)
        with torch.no_grad():
            self.out_dims = int(self._encode(['a']).shape[-1])
        self.freeze()

    def _encode(self, texts: List[str]) -> torch.Tensor:
        """Features (N, out_dims) of N captions."""
        return self.model.encode_text(self.tokenizer(texts).to(self.device)).float()

    def describe(self) -> Dict:
        return dict(type='OpenCLIPTextTower', model_name=self.model_name, pretrained=self.pretrained)
