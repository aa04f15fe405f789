"""The analysis library behind tools/analysis/benchmark.py, get_flops.py and estimate_memory.py, on tiny models."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from torch import nn

import ivnext  # noqa: F401
from ivnext.models.backbones import InternVideoNextViT
from ivnext.analysis.benchmark import TimingStats, saved_activation_bytes, time_interleaved
from ivnext.analysis.compare import run_compare_attn, run_compare_mmaction_vit
from ivnext.analysis.config_benchmark import run_benchmark, train_flops_per_clip
from ivnext.analysis.config_flops import format_flops_report, get_flops, input_shape_of
from ivnext.analysis.config_model import load_config
from ivnext.analysis.flops import FlopReport, count_flops, count_flops_dispatch
from ivnext.analysis.memory import estimate_config_memory
from ivnext.analysis.options import BenchmarkOptions
from ivnext.analysis.report import MD_COLUMNS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
DEMO_CFG = osp.join(ROOT, 'configs', 'demo', 'tiny_recognizer_i3dhead_cpu.py')
TINY = dict(embed_dims=32, depth=1, num_heads=2, num_frames=2, img_size=28, batch_size=1, steps=1, warmup=0,
            device='cpu')

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
    record = run_benchmark(BenchmarkOptions(DEMO_CFG, batch_size=2, steps=2, warmup=0, device='cpu', peak_tflops=0.5,
                                            out_dir=str(tmp_path)))
    rows = _rows(tmp_path / 'benchmark.md')
    assert len(rows) == 3  # header, separator, one result
    header = [c.strip() for c in rows[0].strip('|').split('|')]
    cells = [c.strip() for c in rows[2].strip('|').split('|')]
    assert header == MD_COLUMNS and len(cells) == len(header)
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
    common = dict(batch_size=1, steps=1, warmup=0, device='cpu', mode='forward', out_dir=str(tmp_path / 'out'))
    small = run_benchmark(BenchmarkOptions(str(cfg), name='small', **common))
    large = run_benchmark(BenchmarkOptions(str(cfg), name='large', num_frames=4, **common))
    assert small['num_frames'] == 2 and large['num_frames'] == 4 and set(small['modes']) == {'forward'}
    # 4 CLS + 8 vs 4 CLS + 16 tokens: linear layers scale with the sequence, attention with its square
    ratio = large['modes']['forward']['gflops_per_clip_fwd'] / small['modes']['forward']['gflops_per_clip_fwd']
    assert 20 / 12 < ratio < (20 / 12)**2
    assert len(_rows(tmp_path / 'out' / 'benchmark.md')) == 4  # one header for both rows


def test_compare_mmaction_vit_prints_both_rows(tmp_path, capsys):
    record = run_compare_mmaction_vit(BenchmarkOptions(compare_mmaction_vit=True, out_dir=str(tmp_path), **TINY))
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
    record = run_compare_attn(BenchmarkOptions(compare_attn=True, mode='forward', out_dir=str(tmp_path), **TINY))
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
    assert train_flops_per_clip(report, model) == 100 + 3 * 20 + 3 * 10


def test_get_flops_prints_gflops_and_params(capsys):
    res = get_flops(load_config(DEMO_CFG), [4, 56, 56])
    out = format_flops_report(res)
    assert 'Flops:' in out and 'Params:' in out and 'Recognizer3D.extract_feat' in out
    assert res['input_shape'] == (1, 1, 3, 4, 56, 56) and res['flops'] > 0
    with pytest.raises(ValueError, match='--shape'):
        input_shape_of([1, 2, 3, 4])


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
    # with a trainable input, x @ w also saves the weight; excluding the model's tensors leaves only activations
    xg = torch.randn(128, 64, requires_grad=True)
    assert saved_activation_bytes(lambda: torch.tanh(xg @ w).sum()) == 2 * 128 * 64 * 4 + 64 * 64 * 4
    assert saved_activation_bytes(lambda: torch.tanh(xg @ w).sum(), exclude=[w]) == 2 * 128 * 64 * 4


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
    record = run_benchmark(BenchmarkOptions(cfg, batch_size=2, steps=1, warmup=0, device='cpu', mode='train',
                                            no_flops=True, profile=1, compile='none', out_dir=str(tmp_path)))
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
    run_benchmark(BenchmarkOptions(str(cfg), batch_size=1, steps=1, warmup=0, device='cpu', mode='forward',
                                   no_flops=True, compile='blocks', out_dir=str(tmp_path)))
    assert compiled == ['TransformerBlock']


def test_memory_estimate_books_states_and_scales_activations(tmp_path):
    cfg = osp.join(ROOT, 'configs', 'demo', 'tiny_stage1_cpu.py')
    one = estimate_config_memory(cfg, measure_batch=1, batch_size=4, gpus=2, amp='none')
    two = estimate_config_memory(cfg, measure_batch=2, batch_size=4, gpus=2, amp='none')
    assert one['trainable_bytes'] == 16 * one['trainable_params'] > 0
    assert one['frozen_bytes'] > 0  # the image teacher
    # saved activations grow linearly with the batch: per-clip figures from 1 and 2 clips agree
    assert two['activation_bytes_per_clip'] == pytest.approx(one['activation_bytes_per_clip'], rel=0.2)
    assert one['activations_bytes'] == pytest.approx(4 * one['activation_bytes_per_clip'])
    assert one['fsdp_bytes'] < one['zero2_bytes'] < one['ddp_bytes']
    assert one['batch_size'] == 4


def _run_script(script, *argv, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    return subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'analysis', script), *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_memory_script_writes_the_estimate_and_prints_the_table(tmp_path):
    cfg = osp.join(ROOT, 'configs', 'demo', 'tiny_stage1_cpu.py')
    proc = _run_script('estimate_memory.py', cfg, '--measure-batch', '1', '--batch-size', '4', '--gpus', '2',
                       '--amp', 'none', '--calibrate', '1.0', '--out', str(tmp_path / 'm.json'), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((tmp_path / 'm.json').read_text())
    assert saved['batch_size'] == 4 and saved['gpus'] == 2 and saved['measure_batch'] == 1
    assert saved['calibration'] == pytest.approx(2**30 / saved['ddp_bytes'])
    assert '| FSDP, 2 GPUs |' in proc.stdout and 'calibration: measured 1.0 GiB' in proc.stdout


def test_benchmark_options_name_the_bad_setting():
    with pytest.raises(ValueError, match='CONFIG is required'):
        BenchmarkOptions()
    with pytest.raises(ValueError, match='--batch-size'):
        BenchmarkOptions(DEMO_CFG, batch_size=0)
    with pytest.raises(ValueError, match='--amp'):
        BenchmarkOptions(DEMO_CFG, amp='fp8')
    with pytest.raises(ValueError, match='--peak-tflops and --gpu'):
        BenchmarkOptions(DEMO_CFG, peak_tflops=1.0, gpu='h100')
    assert BenchmarkOptions(DEMO_CFG, gpu='h100').peak() == 989.0
    assert BenchmarkOptions(DEMO_CFG, mode='both').modes == ['forward', 'train']
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='--device cpu'):
            BenchmarkOptions(DEMO_CFG, device='cuda').torch_device()


def test_benchmark_script_runs_the_side_by_side_mode(tmp_path):
    proc = _run_script('benchmark.py', '--compare-mmaction-vit', '--embed-dims', '32', '--depth', '1',
                       '--num-heads', '2', '--num-frames', '2', '--img-size', '28', '--batch-size', '1', '--steps',
                       '1', '--warmup', '0', '--device', 'cpu', '--mode', 'forward', '--no-flops', '--out-dir',
                       str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'ratios ours/theirs: forward_time' in proc.stdout
    assert len(_rows(tmp_path / 'benchmark.md')) == 4
    record = json.loads(next(tmp_path.glob('compare_mmaction_vit_*.json')).read_text())
    assert record['environment']['argv'][0] == '--compare-mmaction-vit'
