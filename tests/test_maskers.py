import math

import pytest
import torch

import ivnext  # noqa: F401
from mmaction.registry import MODELS
from ivnext.models.maskers import MultiBlockMasker3D, RandomMasker, SemanticAwareMasker, TubeMasker

GRID = (4, 8, 8)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registered_and_built_from_config():
    for cfg in (dict(type='RandomMasker', mask_ratio=0.5), dict(type='TubeMasker'),
                dict(type='SemanticAwareMasker', mode='topk'), dict(type='MultiBlockMasker3D', num_blocks=2)):
        masker = MODELS.build(cfg)
        assert type(masker).__name__ == cfg['type']


def test_random_masker_exact_count_and_reproducible():
    masker = RandomMasker(mask_ratio=0.75)
    m1 = masker(6, GRID, generator=_gen(1)).mask
    m2 = masker(6, GRID, generator=_gen(1)).mask
    m3 = masker(6, GRID, generator=_gen(2)).mask
    n = math.prod(GRID)
    assert m1.shape == (6, n) and m1.dtype == torch.bool
    assert (m1.sum(1) == int(n * 0.75)).all()
    assert torch.equal(m1, m2) and not torch.equal(m1, m3)
    # samples differ from each other and every token gets masked sometimes
    assert not torch.equal(m1[0], m1[1])
    many = masker(400, GRID, generator=_gen(3)).mask.float().mean(0)
    assert (many - 0.75).abs().max() < 0.15


def test_tube_masker_same_spatial_mask_in_every_frame():
    masker = TubeMasker(mask_ratio=0.8)
    mask = masker(5, GRID, generator=_gen(0)).mask.view(5, GRID[0], -1)
    assert (mask == mask[:, :1]).all()
    assert (mask.sum(-1) == int(64 * 0.8)).all()
    assert torch.equal(mask, masker(5, GRID, generator=_gen(0)).mask.view(5, GRID[0], -1))
    assert masker.num_masked(GRID) == GRID[0] * int(64 * 0.8)


def test_semantic_masker_counts_per_frame_and_reproducible():
    masker = SemanticAwareMasker(mask_ratio=0.75)
    imp = torch.rand(3, GRID[0], 64, generator=_gen(5))
    m1 = masker(3, GRID, importance=imp, generator=_gen(7)).mask
    assert torch.equal(m1, masker(3, GRID, importance=imp, generator=_gen(7)).mask)
    per_frame = m1.view(3, GRID[0], 64).sum(-1)
    assert (per_frame == 48).all()
    assert masker.num_masked(GRID) == GRID[0] * 48


def test_semantic_masker_topk_exact():
    masker = SemanticAwareMasker(mask_ratio=0.8, mode='topk')
    imp = torch.rand(2, GRID[0], 64, generator=_gen(11))
    mask = masker(2, GRID, importance=imp.view(2, GRID[0], 8, 8)).mask.view(2, GRID[0], 64)
    k = 64 - int(64 * 0.8)
    expected = torch.ones_like(mask)
    expected.scatter_(-1, imp.topk(k, -1).indices, False)
    assert torch.equal(mask, expected)
    # every visible token is at least as important as every masked one, per frame
    vis_min = imp.masked_fill(mask, math.inf).amin(-1)
    masked_max = imp.masked_fill(~mask, -math.inf).amax(-1)
    assert (vis_min >= masked_max).all()


def test_semantic_masker_sampling_follows_importance():
    # one frame: half the tokens 20x more important than the other half
    t, h, w = 1, 8, 8
    imp = torch.ones(1, 1, 64)
    high = torch.arange(64) % 2 == 0
    imp[..., high] = 20.
    masker = SemanticAwareMasker(mask_ratio=0.75)  # 16 visible of 64
    b = 2000
    mask = masker(b, (t, h, w), importance=imp.expand(b, 1, 64), generator=_gen(0)).mask
    visible_rate = (~mask).float().mean(0)
    hi, lo = visible_rate[high].mean(), visible_rate[~high].mean()
    # exact law of drawing 16 of 64 without replacement with weights 20/1 gives ~0.47 vs ~0.029
    assert hi > 0.4 and lo < 0.06 and hi > 8 * lo
    # the sampler is random: visible sets differ across the batch and low tokens are sometimes kept
    assert lo > 0
    # the draw matches torch.multinomial's law (sequential sampling without replacement)
    ref = torch.multinomial(imp[0].expand(b, 64), 16, replacement=False, generator=_gen(1))
    ref_rate = torch.zeros(b, 64).scatter_(1, ref, 1.).mean(0)
    assert abs(ref_rate[high].mean() - hi) < 0.02 and abs(ref_rate[~high].mean() - lo) < 0.01


def test_semantic_masker_zero_importance_never_visible_when_avoidable():
    imp = torch.zeros(50, 1, 64)
    imp[..., :20] = torch.rand(50, 1, 20, generator=_gen(2)) + 0.01
    mask = SemanticAwareMasker(mask_ratio=0.75)(50, (1, 8, 8), importance=imp, generator=_gen(3)).mask
    assert mask[:, 20:].all()


def test_semantic_masker_bad_input():
    masker = SemanticAwareMasker()
    with pytest.raises(ValueError, match='importance'):
        masker(2, GRID)
    with pytest.raises(ValueError, match='shape'):
        masker(2, GRID, importance=torch.rand(2, 3, 64))
    with pytest.raises(ValueError, match='non-negative'):
        masker(1, (1, 2, 2), importance=-torch.ones(1, 1, 4))
    with pytest.raises(ValueError, match='mode'):
        SemanticAwareMasker(mode='best')
    with pytest.raises(ValueError, match='mask_ratio'):
        RandomMasker(mask_ratio=1.0)


def _boxes_union(blocks, grid):
    t, h, w = grid
    out = torch.zeros(blocks.shape[0], t, h, w, dtype=torch.bool)
    for b in range(blocks.shape[0]):
        for t0, h0, w0, t1, h1, w1 in blocks[b].tolist():
            out[b, t0:t1, h0:h1, w0:w1] = True
    return out.flatten(1)


def test_multiblock_union_of_full_length_boxes_equal_counts():
    grid = (4, 14, 14)
    masker = MultiBlockMasker3D(num_blocks=8, spatial_scale=(0.15, 0.15))
    token_mask, blocks = masker.sample_with_blocks(8, grid, generator=_gen(0))
    mask, num_masked = token_mask.mask, token_mask.num_masked
    assert blocks.shape == (8, 8, 6)
    # full temporal extent, same size for every block (V-JEPA draws one size per batch)
    assert (blocks[..., 0] == 0).all() and (blocks[..., 3] == grid[0]).all()
    sizes = blocks[..., 3:] - blocks[..., :3]
    assert (sizes == sizes[0, 0]).all()
    assert (blocks[..., 3:] <= torch.tensor(grid)).all() and (blocks[..., :3] >= 0).all()
    union = _boxes_union(blocks, grid)
    # the union is masked, and only the extra context trimmed to the batch minimum is masked besides it
    assert mask[union].all()
    counts = mask.sum(1)
    assert (counts == num_masked).all()  # the count reported on the host is the mask's
    context = (~union).sum(1)
    assert ((mask & ~union).sum(1) == context - context.min()).all()
    # the sample with the smallest context is exactly the union
    b0 = int(context.argmin())
    assert torch.equal(mask[b0], union[b0])
    # same as the plain call and reproducible
    assert torch.equal(mask, masker(8, grid, generator=_gen(0)).mask)


def test_multiblock_block_statistics_match_config():
    grid = (2, 16, 16)
    masker = MultiBlockMasker3D(num_blocks=1, spatial_scale=(0.1, 0.4), aspect_ratio=(0.75, 1.5))
    g = _gen(4)
    areas, ratios = [], []
    for _ in range(300):
        t, h, w = masker.sample_block_size(grid, generator=g)
        assert t == grid[0]
        areas.append(h * w / 256)
        ratios.append(h / w)
    areas, ratios = torch.tensor(areas), torch.tensor(ratios)
    assert 0.07 <= areas.min() and areas.max() <= 0.45
    assert abs(areas.mean() - 0.25) < 0.03
    assert 0.6 <= ratios.min() and ratios.max() <= 1.8
    assert abs(ratios.log().mean() - math.log(1.1)) < 0.12
    # a single block: the smallest-context sample masks exactly h*w*T tokens
    token_mask, blocks = masker.sample_with_blocks(4, grid, generator=_gen(9))
    mask = token_mask.mask
    t, h, w = (blocks[0, 0, 3:] - blocks[0, 0, :3]).tolist()
    assert (mask.sum(1) == t * h * w).all()


def test_multiblock_context_cap_and_positions_vary():
    grid = (4, 16, 16)
    masker = MultiBlockMasker3D(num_blocks=2, spatial_scale=(0.7, 0.7), max_context_tokens=100)
    token_mask, blocks = masker.sample_with_blocks(16, grid, generator=_gen(1))
    mask = token_mask.mask
    assert ((~mask).sum(1) == 100).all()
    assert len({tuple(b) for b in blocks[:, 0, :3].tolist()}) > 1
    assert masker(16, grid, generator=_gen(1)).mask.equal(mask)
    with pytest.raises(ValueError, match='spatial_scale'):
        MultiBlockMasker3D(spatial_scale=(0., 0.2))
