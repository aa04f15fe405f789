"""tools/analysis/benchmark.py, tools/analysis/get_flops.py and their helpers on tiny models."""
import json
import os
import os.path as osp
import sys

import pytest
import torch
from torch import nn

import ivnext  # noqa: F401
from ivnext.models.backbones import InternVideoNextViT
from ivnext.analysis.benchmark import TimingStats, saved_activation_bytes, time_interleaved
from ivnext.analysis.flops import FlopReport, count_flops, count_flops_dispatch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))

import benchmark as bench_tool  # noqa: E402
import estimate_memory as memory_tool  # noqa: E402
import get_flops as flops_tool  # noqa: E402

DEMO_CFG = osp.join(ROOT, 'configs', 'demo', 'tiny_recognizer_i3dhead_cpu.py')
TINY = ['--embed-dims', '32', '--depth', '1', '--num-heads', '2', '--num-frames', '2', '--img-size', '28',
        '--batch-size', '1', '--steps', '1', '--warmup', '0', '--device', 'cpu']

ENCODER_CFG = """
default_scope = 'mmaction'
custom_imports = dict(imports=['ivnext'], allow_failed_imports=False)
model = dict(type='InternVideoNextViT', arch=dict(embed_dims=32, num_layers=1, num_heads=2), img_size=28,
             num_frames=2, out_type='avg', with_clip_projector=False)
"""


def _rows(md_path):
    with open(md_path) as f:
        return [line for line in f.read().splitlines() if line.startswith('|')]


def test_recognizer_benchmark_writes_markdown_and_json(tmp_path):
    record = bench_tool.main([DEMO_CFG, '--batch-size', '2', '--steps', '2', '--warmup', '0', '--device', 'cpu',
                              '--peak-tflops', '0.5', '--out-dir', str(tmp_path)])
    rows = _rows(tmp_path / 'benchmark.md')
    assert len(rows) == 3  # header, separator, one result
    header = [c.strip() for c in rows[0].strip('|').split('|')]
    cells = [c.strip() for c in rows[2].strip('|').split('|')]
    assert header == bench_tool.MD_COLUMNS and len(cells) == len(header)
    assert cells[:5] == ['tiny_recognizer_i3dhead_cpu', 'model', 'cpu', 'none', '2 x 4 x 56']

    json_files = list(tmp_path.glob('*.json'))
    assert len(json_files) == 1
    saved = json.loads(json_files[0].read_text())
    assert saved['num_frames'] == 4 and saved['img_size'] == 56 and saved['batch_size'] == 2
    assert 'Recognizer3D(mode=' in saved['flops_counted']['train']
    for mode in ('train', 'forward'):
        entry = saved['modes'][mode]
        assert entry['time_s']['steps'] == 2
        assert entry['time_s']['q1'] <= entry['time_s']['median'] <= entry['time_s']['q3']
        assert entry['clips_per_s'] == pytest.approx(2 / entry['time_s']['median'])
        assert entry['peak_mem_bytes'] > 0
        assert entry['mfu'] == pytest.approx(entry['tflops'] / 0.5)
        assert entry['gflops_by_child_fwd']['backbone'] > 0
    # the backbone dominates; training counts 3x forward (every child is trainable here)
    train = saved['modes']['train']
    assert train['gflops_per_clip_step'] == pytest.approx(3 * train['gflops_per_clip_fwd'])
    assert record['modes']['train']['tflops'] == pytest.approx(
        2 * train['gflops_per_clip_step'] * 1e9 * 2 / train['time_s']['median'] / 1e12)


def test_backbone_component_and_shape_overrides(tmp_path):
    cfg = tmp_path / 'tiny_encoder.py'
    cfg.write_text(ENCODER_CFG)
    common = ['--batch-size', '1', '--steps', '1', '--warmup', '0', '--device', 'cpu', '--mode', 'forward',
              '--out-dir', str(tmp_path / 'out')]
    small = bench_tool.main([str(cfg), '--name', 'small', *common])
    large = bench_tool.main([str(cfg), '--name', 'large', '--num-frames', '4', *common])
    assert small['num_frames'] == 2 and large['num_frames'] == 4 and set(small['modes']) == {'forward'}
    # 4 CLS + 8 vs 4 CLS + 16 tokens: linear layers scale with the sequence, attention with its square
    ratio = large['modes']['forward']['gflops_per_clip_fwd'] / small['modes']['forward']['gflops_per_clip_fwd']
    assert 20 / 12 < ratio < (20 / 12)**2
    assert len(_rows(tmp_path / 'out' / 'benchmark.md')) == 4  # one header for both rows


def test_compare_mmaction_vit_prints_both_rows(tmp_path, capsys):
    record = bench_tool.main(['--compare-mmaction-vit', *TINY, '--out-dir', str(tmp_path)])
    out = capsys.readouterr().out
    assert 'ivnext InternVideoNextViT' in out and 'mmaction2 VisionTransformer' in out
    assert 'ratios ours/theirs: forward_time' in out
    ratios = record['ratios_ours_over_theirs']
    assert set(ratios) == {'forward_time', 'forward_time_min', 'train_time', 'train_time_min',
                           'train_saved_activations'}
    ours, theirs = (record['results'][k] for k in ('ivnext InternVideoNextViT', 'mmaction2 VisionTransformer'))
    assert ratios['forward_time'] == pytest.approx(
        ours['modes']['forward']['time_s']['median'] / theirs['modes']['forward']['time_s']['median'])
    # same width/depth/patch tokens; ours also runs its 4 CLS tokens through every block
    assert ours['gflops_per_clip_fwd'] > theirs['gflops_per_clip_fwd'] > 0
    assert len(_rows(tmp_path / 'benchmark.md')) == 4


def test_compare_attn_without_flash_times_sdpa_only(tmp_path, capsys):
    record = bench_tool.main(['--compare-attn', *TINY, '--mode', 'forward', '--out-dir', str(tmp_path)])
    out = capsys.readouterr().out
    assert 'flash-attn path unavailable' in out
    assert list(record['results']) == ['sdpa'] and record['flash_unavailable']


def test_fvcore_counts_attention_and_norms_exactly():
    c, heads, t, s, p = 32, 2, 2, 28, 14
    enc = InternVideoNextViT(arch=dict(embed_dims=c, num_layers=1, num_heads=heads), img_size=s, num_frames=t,
                             out_type='avg', with_clip_projector=False)
    report = count_flops(enc, torch.randn(1, 3, t, s, s))
    n = t * (s // p)**2
    seq = n + 4
    patch = n * 588 * 5 + n * 588 * c + n * c * 5  # RMSNorm, projection, RMSNorm
    linear = seq * c * (3 * c) + seq * c * c + 2 * seq * c * 4 * c  # qkv, proj, fc1, fc2
    attention = seq * seq * c * 2  # q k^T and attn v over all heads
    norms = 4 * seq * c * 5  # norm1, norm2, q_norm, k_norm
    assert report.by_child == {'patch_embed': patch, 'blocks': linear + attention + norms}
    assert report.total == patch + linear + attention + norms
    assert report.params['total'] == sum(x.numel() for x in enc.parameters())


def test_train_flops_count_frozen_children_once():
    model = nn.Module()
    model.teacher = nn.Linear(2, 2).requires_grad_(False)
    model.student = nn.Linear(2, 2)
    report = FlopReport(total=130, by_child={'teacher': 100, 'student': 20, '(other)': 10})
    assert bench_tool.train_flops_per_clip(report, model) == 100 + 3 * 20 + 3 * 10


def test_get_flops_prints_gflops_and_params(capsys):
    res = flops_tool.main([DEMO_CFG, '--shape', '4', '56', '56'])
    out = capsys.readouterr().out
    assert 'Flops:' in out and 'Params:' in out and 'Recognizer3D.extract_feat' in out
    assert res['input_shape'] == (1, 1, 3, 4, 56, 56) and res['flops'] > 0
    with pytest.raises(ValueError, match='--shape'):
        flops_tool.input_shape_of([1, 2, 3, 4])


def test_timing_and_memory_helpers():
    stats = TimingStats.from_times([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (stats.median, stats.q1, stats.q3, stats.iqr, stats.steps) == (3.0, 2.0, 4.0, 2.0, 5)
    with pytest.raises(ValueError, match='steps'):
        TimingStats.from_times([])
    calls = []
    out = time_interleaved({'a': lambda: calls.append('a'), 'b': lambda: calls.append('b')}, steps=2, warmup=1,
                           device=torch.device('cpu'))
    assert calls == ['a', 'b'] * 3 and out['a'].steps == 2
    w = torch.randn(64, 64, requires_grad=True)
    x = torch.randn(128, 64)
    # x @ w saves x (32 KiB; w needs no saving as x takes no gradient) and tanh its 32 KiB output
    assert saved_activation_bytes(lambda: torch.tanh(x @ w).sum()) == 2 * 128 * 64 * 4


class _Student(nn.Module):
    """A toy algorithm reaching its encoder through a method other than ``forward`` (as pretraining does)."""

    def __init__(self):
        super().__init__()
        self.teacher = nn.Linear(8, 8).requires_grad_(False)
        self.backbone = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 8))
        self.head = nn.Linear(8, 4)

    def encode(self, x):
        return self.backbone[1](self.backbone[0](x))

    def forward(self, x):
        return self.head(self.encode(x) + self.teacher(x)) @ torch.ones(4, 2)


def test_dispatch_counter_attributes_ops_to_top_level_children():
    model = _Student()
    report = count_flops_dispatch(model, lambda: model(torch.randn(3, 8)))
    assert report.by_child == {'teacher': 3 * 8 * 8, 'backbone': 3 * (8 * 16 + 16 * 8), 'head': 3 * 8 * 4,
                               '(other)': 3 * 4 * 2}
    assert report.total == sum(report.by_child.values())
    # same numbers as fvcore for matrix products and attention on the real encoder (fvcore also counts norms)
    enc = InternVideoNextViT(arch=dict(embed_dims=32, num_layers=1, num_heads=2), img_size=28, num_frames=2,
                             out_type='avg', with_clip_projector=False)
    x = torch.randn(1, 3, 2, 28, 28)
    seq, n, c = 12, 8, 32
    matmuls = n * 588 * c + seq * c * 3 * c + seq * c * c + 2 * seq * c * 4 * c + 2 * seq * seq * c
    assert count_flops_dispatch(enc, lambda: enc(x)).total == matmuls


def test_scale_out_variants_load_with_flexible_runner():
    from mmengine.config import Config
    from mmengine.registry import FUNCTIONS
    folder = osp.join(ROOT, 'configs', 'pretrain')
    variants = sorted(osp.join(folder, f) for f in os.listdir(folder) if '-fsdp-' in f or '-ds-' in f)
    assert len(variants) == 4
    for path in variants:
        cfg = Config.fromfile(path)
        assert cfg.runner_type == 'FlexibleRunner' and cfg.model.backbone.arch == 'large'
        if '-fsdp-' in path:
            policy = cfg.strategy.model_wrapper.auto_wrap_policy
            assert cfg.strategy.type == 'FSDPStrategy'
            with FUNCTIONS.switch_scope_and_registry(None):
                assert callable(FUNCTIONS.get(policy.type))
            # one FSDP unit per residual block; the frozen teacher stays replicated; one full checkpoint file
            assert policy.type == 'block_wrap_policy'
            assert list(cfg.strategy.model_wrapper.ignored_modules) == ['teacher']
            assert cfg.strategy.state_dict_cfg == 'full' and cfg.optim_wrapper.type == 'BFloat16OptimWrapper'
        else:
            assert cfg.strategy.type == 'DeepSpeedStrategy' and cfg.strategy.zero_optimization.stage == 2
            assert cfg.optim_wrapper.type == 'DeepSpeedOptimWrapper' and 'dtype' not in cfg.optim_wrapper
            assert cfg.optim_wrapper.optimizer.betas == (0.9, 0.98)


def test_rms_norm_keeps_fused_kernel_under_bf16_and_equals_torch_in_fp32():
    import warnings

    from ivnext.models.layers import RMSNorm
    ours, ref = RMSNorm(16, eps=1e-6), nn.RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 5, 16, requires_grad=True)
    assert torch.equal(ours(x), ref(x))
    g_ours = torch.autograd.grad(ours(x).square().sum(), [x, ours.weight])
    g_ref = torch.autograd.grad(ref(x).square().sum(), [x, ref.weight])
    assert all(torch.equal(a, b) for a, b in zip(g_ours, g_ref))

    def mismatch_warnings(module, inp):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            module(inp)
        return [w for w in caught if 'Mismatch dtype' in str(w.message)]

    half = x.detach().bfloat16()
    assert mismatch_warnings(ref, half)  # torch's module falls back to the unfused path
    assert not mismatch_warnings(ours, half)
    assert ours(half).dtype == torch.bfloat16
    enc = InternVideoNextViT(arch=dict(embed_dims=32, num_layers=1, num_heads=2), img_size=28, num_frames=2,
                             out_type='avg', with_clip_projector=False)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert not mismatch_warnings(enc, torch.randn(1, 3, 2, 28, 28))


def test_profile_names_every_stage1_component(tmp_path):
    """--profile: forward time per component of a Stage-1 step and the top operators, in Markdown and JSON."""
    cfg = osp.join(ROOT, 'configs', 'demo', 'tiny_stage1_cpu.py')
    record = bench_tool.main([cfg, '--batch-size', '2', '--steps', '1', '--warmup', '0', '--device', 'cpu',
                              '--mode', 'train', '--no-flops', '--profile', '1', '--compile', 'none',
                              '--out-dir', str(tmp_path)])
    profile = record['profile']
    assert profile['time_kind'] == 'cpu'
    for name in ('teacher', 'backbone', 'neck', 'head', 'align_head', 'pooled_align_head'):
        assert profile['components'][name] > 0, name
    assert profile['ops'] and all(0 <= row['share'] <= 1 for row in profile['ops'])
    text = next(tmp_path.glob('*_profile.md')).read_text()
    assert '| backbone |' in text and 'aten::' in text


def test_compile_blocks_option_compiles_only_blocks(tmp_path, monkeypatch):
    """--compile blocks hands every residual block to torch.compile (here a recording stand-in)."""
    compiled = []
    monkeypatch.setattr(torch.nn.Module, 'compile', lambda self, **kw: compiled.append(type(self).__name__))
    cfg = tmp_path / 'encoder.py'
    cfg.write_text(ENCODER_CFG)
    bench_tool.main([str(cfg), '--batch-size', '1', '--steps', '1', '--warmup', '0', '--device', 'cpu',
                     '--mode', 'forward', '--no-flops', '--compile', 'blocks', '--out-dir', str(tmp_path)])
    assert compiled == ['TransformerBlock']


def test_memory_estimate_books_states_and_scales_activations(tmp_path):
    cfg = osp.join(ROOT, 'configs', 'demo', 'tiny_stage1_cpu.py')
    one = memory_tool.main([cfg, '--measure-batch', '1', '--batch-size', '4', '--gpus', '2', '--amp', 'none',
                            '--out', str(tmp_path / 'm.json')])
    two = memory_tool.main([cfg, '--measure-batch', '2', '--batch-size', '4', '--gpus', '2', '--amp', 'none'])
    assert one['trainable_bytes'] == 16 * one['trainable_params'] > 0
    assert one['frozen_bytes'] > 0  # the image teacher
    # saved activations grow linearly with the batch: per-clip figures from 1 and 2 clips agree
    assert two['activation_bytes_per_clip'] == pytest.approx(one['activation_bytes_per_clip'], rel=0.2)
    assert one['activations_bytes'] == pytest.approx(4 * one['activation_bytes_per_clip'])
    assert one['fsdp_bytes'] < one['zero2_bytes'] < one['ddp_bytes']
    assert json.loads((tmp_path / 'm.json').read_text())['batch_size'] == 4
