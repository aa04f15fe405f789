"""A frozen text encoder with a feature cache keyed by caption string."""
from abc import abstractmethod
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn


class FrozenTextTower(nn.Module):
    """Base of the frozen text towers of video-text alignment.

    Every parameter has ``requires_grad=False``, the tower stays in ``eval()`` whatever ``train()`` is called with,
    and :meth:`encode` runs under ``torch.no_grad()``. Since the tower never changes, the feature of a caption is
    the same every time it is seen: with ``cache_size > 0`` features are kept (float32, on CPU) by caption string,
    and a caption is run through the tower only the first time (captions repeat every epoch).

    Subclasses implement :meth:`_encode` (a batch of strings to features) and set ``out_dims``.

    Args:
        batch_size: Captions per forward pass of the tower.
        cache_size: Captions whose features are kept (least recently used dropped first); 0 turns the cache off.
    """

    out_dims: int

    def __init__(self, batch_size: int = 256, cache_size: int = 1_000_000):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f'text tower batch_size must be >= 1, got {batch_size}')
        if cache_size < 0:
            raise ValueError(f'text tower cache_size must be >= 0 (0 turns the cache off), got {cache_size}')
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: 'OrderedDict[str, torch.Tensor]' = OrderedDict()

    def freeze(self) -> None:
        """Freeze every parameter and switch to eval mode (call at the end of a subclass ``__init__``)."""
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> 'FrozenTextTower':
        return super().train(False)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device('cpu')

    @abstractmethod
    def _encode(self, texts: List[str]) -> torch.Tensor:
        """Features (N, out_dims) of N captions, computed by the tower (no cache)."""

    @abstractmethod
    def describe(self) -> Dict:
        """What rebuilds this tower: the constructor arguments written to an aligner's ``config.json``."""

    @property
    def cached(self) -> int:
        """Number of captions in the cache."""
        return len(self._cache)

    def clear_cache(self) -> None:
        self._cache.clear()

    @torch.no_grad()
    def encode(self, texts: Sequence[str], device: Optional[torch.device] = None) -> torch.Tensor:
        """Features of captions, from the cache where possible.

        Args:
            texts: N caption strings.
            device: Where to put the result (default: the tower's device).

        Returns:
            Tensor: (N, out_dims) float32.
        """
        if isinstance(texts, str):
            raise TypeError('encode takes a list of captions, got one string; wrap it in a list')
        texts = [str(t) for t in texts]
        device = self.device if device is None else device
        if not self.cache_size:
            return self._run(texts).to(device)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            feats = self._run(missing).cpu()
            for text, feat in zip(missing, feats):
                self._cache[text] = feat
        for text in texts:
            self._cache.move_to_end(text)
        out = torch.stack([self._cache[t] for t in texts]).to(device)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def _run(self, texts: List[str]) -> torch.Tensor:
        chunks = [self._encode(texts[i:i + self.batch_size]).float() for i in range(0, len(texts), self.batch_size)]
        return torch.cat(chunks) if chunks else torch.zeros(0, self.out_dims)
