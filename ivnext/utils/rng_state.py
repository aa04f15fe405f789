"""Capture and restore every random-number state a training step draws from, in weights-only-loadable form.

Covered: Python's ``random``, numpy's global ``RandomState``, torch's CPU and CUDA generators, and any
``torch.Generator`` a module of the model keeps as an attribute (e.g. a masker with its own generator). Data
loader worker processes seed themselves from these at each loader start; their state inside a running epoch
is not captured.
"""
import random
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn


def _module_generators(model: Optional[nn.Module]) -> Dict[str, torch.Generator]:
    """``{'<module path>.<attribute>': generator}`` for every ``torch.Generator`` attribute of ``model``'s modules."""
    found = {}
    if model is None:
        return found
    for name, module in model.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, torch.Generator):
                found[f'{name}.{attr}' if name else attr] = value
    return found


def capture_rng_state(model: Optional[nn.Module] = None) -> Dict[str, Any]:
    """The current random states (tensors, ints, strings and tuples only: loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = dict(
        python=(version, list(internal), gauss),
        numpy=(kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        torch=torch.get_rng_state(),
        generators={name: gen.get_state() for name, gen in _module_generators(model).items()})
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any], model: Optional[nn.Module] = None) -> None:
    """Set the random states captured by :func:`capture_rng_state`.

    Raises:
        KeyError: A generator of the saved state is not on ``model`` (the model changed since the save).
    """
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
    generators = _module_generators(model)
    for name, gen_state in state.get('generators', {}).items():
        if name not in generators:
            raise KeyError(f'the checkpoint holds the state of generator {name!r}, which the model does not have')
        generators[name].set_state(gen_state)
