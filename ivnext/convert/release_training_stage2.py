"""Parameter names between ivnext's Stage-2 model and the authors' Stage-2 training modules.

The authors' Stage 2 (``InternVideo-Next/models/InternVideo_next_s2.py``, class ``InternVideo2``) is one module
holding the student encoder, the predictor (``bert_mask_token``, ``diff_pos_embed``, ``to_bert_proj``,
``bert_decoder.layers``) and the latent decoder (``selfdist_decoder``); its frozen teacher is a second copy of
the same class (``main_stage2.py``: ``copy.deepcopy`` of the student after loading the Stage-1 checkpoint), of
which only the encoder runs (``embed_only=True``). ivnext's ``InternVideoNextStage2`` splits these into
``backbone``, ``neck``, ``head`` and ``teacher``.

Encoder and predictor names are those of Stage 1 (:func:`ivnext.convert.release_training.stage1_release_name`);
the head maps as ``head.decoder.{fc1,fc2,norm}`` -> ``selfdist_decoder.{head.0,head.2,norm}``. The release's
unused Stage-2 parameters (``clip_pos_embed``, ``selfdist_normproj_decoder``, ``selfdist_proj_clip``, and the
ModernBERT embeddings / final norm) have no ivnext counterpart: the Stage-2 loss never reaches them.
"""
from typing import Dict, List, Optional, Tuple

import torch

from .release_training import stage1_release_name

_HEAD = [('head.decoder.fc1.', 'selfdist_decoder.head.0.'), ('head.decoder.fc2.', 'selfdist_decoder.head.2.'),
         ('head.decoder.norm.', 'selfdist_decoder.norm.')]

# Release Stage-2 parameters with no ivnext counterpart (never reached by the Stage-2 loss).
RELEASE_ONLY_PREFIXES = ('clip_pos_embed', 'selfdist_normproj_decoder.', 'selfdist_proj_clip.',
                         'bert_decoder.embeddings.', 'bert_decoder.final_norm.')


def stage2_release_name(name: str) -> Optional[Tuple[str, str]]:
    """Where an ivnext Stage-2 parameter lives in the release.

    Args:
        name: ivnext name, e.g. ``head.decoder.fc1.weight`` or ``teacher.blocks.0.attn.qkv.weight``.

    Returns:
        tuple: (``'student'`` or ``'teacher'``, the release's name in that module), or None for a parameter
        without a release counterpart.
    """
    if name.startswith('teacher.'):
        return 'teacher', name[len('teacher.'):]
    for ours, theirs in _HEAD:
        if name.startswith(ours):
            return 'student', theirs + name[len(ours):]
    if name.startswith(('backbone.', 'neck.')):
        theirs = stage1_release_name(name)
        return None if theirs is None else ('student', theirs)
    return None


def stage2_to_release(state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """Split and rename an ivnext Stage-2 state dict for the release's student and teacher modules.

    Args:
        state: ivnext Stage-2 state dict (``backbone.*``, ``neck.*``, ``head.*``, ``teacher.*``).

    Returns:
        tuple: (student state, teacher state), release-named. Keys without a counterpart are left out.
    """
    out: Dict[str, Dict[str, torch.Tensor]] = dict(student={}, teacher={})
    for name, value in state.items():
        where = stage2_release_name(name)
        if where is not None:
            out[where[0]][where[1]] = value
    return out['student'], out['teacher']


def stage2_from_release(student: Dict[str, torch.Tensor], teacher: Dict[str, torch.Tensor],
                        names: List[str]) -> Dict[str, torch.Tensor]:
    """The inverse of :func:`stage2_to_release` for the ivnext parameter ``names``.

    Args:
        student: Release-named student tensors (a Stage-2 checkpoint of the authors' code).
        teacher: Release-named teacher tensors (in the release, the student's initial copy).
        names: ivnext names wanted; those without a release counterpart are skipped.

    Returns:
        dict: ivnext-named tensors.
    """
    parts = dict(student=student, teacher=teacher)
    out = {}
    for name in names:
        where = stage2_release_name(name)
        if where is not None and where[1] in parts[where[0]]:
            out[name] = parts[where[0]][where[1]]
    return out
