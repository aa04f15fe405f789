"""A frozen teacher whose outputs are remembered per clip, for training on small fixed clip sets."""
import hashlib
from collections import OrderedDict
from typing import Dict, List

import torch
from mmaction.registry import MODELS
from torch import nn


@MODELS.register_module()
class CachedTeacher(nn.Module):
    """Wraps a frozen image teacher and reuses its outputs for clips it has seen before.

    A clip is recognised by a hash of its exact bytes, so a cached output is only ever returned for the very same
    input tensor: the training result is the wrapped teacher's, bit for bit up to the storage ``dtype``. It pays
    off when the same clips come back every epoch unchanged (a deterministic pipeline: no random crops or frame
    offsets), which is the miniature demo's case: the teacher is about 70% of a CPU Stage-1 step.

    Args:
        teacher: Config of the wrapped teacher (e.g. ``DINOv2Teacher``).
        max_clips: Clips kept (least recently used dropped first).
        dtype: Storage dtype of the cached hidden states ('float16' or 'float32').
    """

    def __init__(self, teacher: dict, max_clips: int = 4096, dtype: str = 'float16'):
        super().__init__()
        if dtype not in ('float16', 'float32'):
            raise ValueError(f"dtype must be 'float16' or 'float32', got {dtype!r}")
        self.teacher = MODELS.build(teacher)
        self.max_clips = int(max_clips)
        self.store_dtype = getattr(torch, dtype)
        self._cache: 'OrderedDict[str, Dict]' = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__('teacher'), name)

    @staticmethod
    def clip_key(clip: torch.Tensor) -> str:
        """Hash of one clip's bytes, shape and dtype."""
        data = clip.detach().contiguous().cpu()
        digest = hashlib.blake2b(data.view(torch.uint8).reshape(-1).numpy().tobytes(), digest_size=16)
        digest.update(str((tuple(data.shape), data.dtype)).encode())
        return digest.hexdigest()

    @torch.no_grad()
    def forward(self, clip: torch.Tensor) -> Dict:
        """The wrapped teacher's output dict for clips (B, 3, T, H, W), computed only for unseen clips."""
        keys = [self.clip_key(c) for c in clip]
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing:
            out = self.teacher(clip[missing])
            for j, i in enumerate(missing):
                self._cache[keys[i]] = dict(
                    hidden_states=[h[j].to(self.store_dtype) for h in out['hidden_states']],
                    pooled_frames=out['pooled_frames'][j], pooled=out['pooled'][j],
                    importance=out['importance'][j], grid=tuple(out['grid']))
            while len(self._cache) > self.max_clips:
                self._cache.popitem(last=False)
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        items: List[Dict] = []
        for k in keys:
            self._cache.move_to_end(k)
            items.append(self._cache[k])
        device = clip.device
        num_layers = len(items[0]['hidden_states'])
        # Assembling the batch is storage, not compute: outside autocast, whose CPU policy for ``stack`` rejects
        # the float16 storage dtype under bf16 autocast (the paper's precision).
        with torch.autocast(device_type=device.type, enabled=False):
            return self._assemble(items, num_layers, device)

    @staticmethod
    def _assemble(items: List[Dict], num_layers: int, device: torch.device) -> Dict:
        return dict(
            hidden_states=[torch.stack([it['hidden_states'][i] for it in items]).float().to(device)
                           for i in range(num_layers)],
            pooled_frames=torch.stack([it['pooled_frames'] for it in items]).to(device),
            pooled=torch.stack([it['pooled'] for it in items]).to(device),
            importance=torch.stack([it['importance'] for it in items]).to(device),
            grid=items[0]['grid'])
