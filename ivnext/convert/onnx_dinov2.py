"""Rebuild a Hugging Face ``Dinov2Model`` from the weights of a DINOv2 backbone exported to ONNX."""
import math
import re
from typing import Dict

import numpy as np
import torch
from transformers import Dinov2Config, Dinov2Model


def _constants(graph) -> Dict[str, np.ndarray]:
    import onnx.numpy_helper as nh
    return {n.output[0]: nh.to_array(n.attribute[0].t) for n in graph.node if n.op_type == 'Constant'}


# transformers 4.x Dinov2Model names (those of the ONNX export) -> transformers 5 names.
_ATTENTION_NAMES_5 = {'attention.attention.query.': 'attention.q_proj.',
                      'attention.attention.key.': 'attention.k_proj.',
                      'attention.attention.value.': 'attention.v_proj.',
                      'attention.output.dense.': 'attention.o_proj.'}


def _to_model_names(state: Dict[str, np.ndarray], model_keys) -> Dict[str, np.ndarray]:
    """Rename the 4.x attention weights of ``state`` where the installed Dinov2Model uses transformers 5 names."""
    if any('attention.attention.query.' in key for key in model_keys):
        return state
    renamed = {}
    for key, value in state.items():
        for old, new in _ATTENTION_NAMES_5.items():
            key = key.replace(old, new)
        renamed[key] = value
    return renamed


def convert_onnx_dinov2(onnx_path: str, prefix: str = 'backbone.') -> Dinov2Model:
    """Read a DINOv2 backbone's initializers from an ONNX graph into a transformers ``Dinov2Model``.

    The graph must be a transformers ``Dinov2Model`` export (parameter names such as
    ``{prefix}encoder.layer.0.norm1.weight``). Linear weights were folded into anonymous ``MatMul`` initializers
    (stored as (in, out)); each is named by the bias added right after its ``MatMul``. The position table is the
    pair of anonymous initializers read by the embedding sub-graph: a (1, 1, C) class entry and a (1, n*n, C) patch
    table. Depth, width, heads, MLP width, patch size, layer-norm epsilon and position-table size are read from the
    graph. The ``mask_token`` is not part of an inference graph; it is left at zero (unused without a mask).

    Args:
        onnx_path: Path of the ``.onnx`` file.
        prefix: Name prefix of the backbone's parameters inside the graph.

    Returns:
        Dinov2Model: float32, eval mode, SDPA attention.
    """
    import onnx
    import onnx.numpy_helper as nh

    graph = onnx.load(onnx_path).graph
    inits = {t.name: nh.to_array(t) for t in graph.initializer}
    consts = _constants(graph)
    consumers: Dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    state: Dict[str, np.ndarray] = {k[len(prefix):]: v for k, v in inits.items() if k.startswith(prefix)}
    if 'embeddings.cls_token' not in state:
        raise ValueError(f'{onnx_path}: no {prefix}embeddings.cls_token initializer; is this a transformers '
                         f'Dinov2Model export? Pass the right prefix.')
    if any('register_tokens' in k for k in state):
        raise ValueError(f'{onnx_path}: register tokens found; convert it to Dinov2WithRegistersModel instead.')

    # Linear weights: MatMul(x, W) followed by Add(bias).
    for node in graph.node:
        if node.op_type != 'MatMul' or node.input[1] not in inits or node.input[1].startswith(prefix):
            continue
        biases = [i for c in consumers.get(node.output[0], []) if c.op_type == 'Add' for i in c.input
                  if i.startswith(prefix) and i.endswith('.bias')]
        if len(biases) != 1:
            raise ValueError(f'{onnx_path}: cannot name MatMul weight {node.input[1]} (no unique bias Add after it).')
        state[biases[0][len(prefix):-len('bias')] + 'weight'] = inits[node.input[1]].T

    # Position table: anonymous initializers used by the embedding sub-graph.
    emb_scope = '/' + prefix.strip('.').replace('.', '/') + '/embeddings/'
    pos = [name for name, nodes in consumers.items()
           if name in inits and not name.startswith(prefix) and any(n.name.startswith(emb_scope) for n in nodes)]
    cls_pos = [inits[n] for n in pos if inits[n].ndim == 3 and inits[n].shape[1] == 1]
    patch_pos = [inits[n] for n in pos if inits[n].ndim == 3 and inits[n].shape[1] > 1]
    if len(cls_pos) != 1 or len(patch_pos) != 1:
        raise ValueError(f'{onnx_path}: expected one class and one patch position initializer, found {pos}.')
    state['embeddings.position_embeddings'] = np.concatenate([cls_pos[0], patch_pos[0]], axis=1)

    hidden = state['embeddings.cls_token'].shape[-1]
    patch = state['embeddings.patch_embeddings.projection.weight'].shape[-1]
    depth = 1 + max(int(m.group(1)) for k in state for m in [re.match(r'encoder\.layer\.(\d+)\.', k)] if m)
    side = math.isqrt(patch_pos[0].shape[1])
    if side * side != patch_pos[0].shape[1]:
        raise ValueError(f'{onnx_path}: patch position table of {patch_pos[0].shape[1]} entries is not square.')
    mlp_hidden = state['encoder.layer.0.mlp.fc1.bias'].shape[0]

    # Heads: the (heads, head_dim) constants of the first attention's reshape; eps: the first norm's constant.
    scope0 = emb_scope.replace('/embeddings/', '/encoder/layer.0/')
    heads = None
    for node in graph.node:
        if node.op_type == 'Concat' and node.name.startswith(scope0 + 'attention/attention/'):
            ints = [int(consts[i].reshape(-1)[0]) for i in node.input if i in consts and consts[i].size == 1]
            if len(ints) == 2 and ints[0] * ints[1] == hidden:
                heads = ints[0]
                break
    eps = next((float(consts[i]) for node in graph.node if node.name == scope0 + 'norm1/Add'
                for i in node.input if i in consts), 1e-6)
    if heads is None:
        raise ValueError(f'{onnx_path}: could not read the number of attention heads from the graph.')

    if mlp_hidden % hidden:
        raise ValueError(f'{onnx_path}: MLP width {mlp_hidden} is not a multiple of the width {hidden}; '
                         'Dinov2Config takes an integer mlp_ratio.')
    config = Dinov2Config(
        hidden_size=hidden, num_hidden_layers=depth, num_attention_heads=heads, mlp_ratio=mlp_hidden // hidden,
        patch_size=patch, image_size=side * patch, layer_norm_eps=eps, hidden_act='gelu', qkv_bias=True,
        use_swiglu_ffn=False, layerscale_value=1.0)
    model = Dinov2Model._from_config(config, attn_implementation='sdpa')
    state.setdefault('embeddings.mask_token', np.zeros((1, hidden), dtype=np.float32))
    state = _to_model_names(state, model.state_dict().keys())
    tensors = {k: torch.from_numpy(np.array(v, dtype=np.float32, copy=True)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ValueError(f'{onnx_path}: weights do not fit Dinov2Model: missing {missing}, unexpected {unexpected}.')
    return model.eval()


def convert_onnx_dinov2_to_dir(onnx_path: str, out_dir: str, prefix: str = 'backbone.') -> Dinov2Model:
    """Convert like :func:`convert_onnx_dinov2` and ``save_pretrained`` the model to ``out_dir`` (safetensors).

    Returns:
        Dinov2Model: The converted model.
    """
    model = convert_onnx_dinov2(onnx_path, prefix=prefix)
    model.save_pretrained(out_dir, safe_serialization=True)
    return model


__all__ = ['convert_onnx_dinov2', 'convert_onnx_dinov2_to_dir']
