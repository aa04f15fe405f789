"""ivnext.compat: each workaround acts only where its problem exists and leaves everything else as it was."""
import importlib.util
import sys

import pytest
import torch
from mmaction.models import ActionDataPreprocessor
from transformers import ModernBertConfig
from transformers.models.modernbert import modeling_modernbert

from ivnext import compat


def test_torchvision_guard_leaves_an_absent_torchvision_absent(monkeypatch):
    """No torchvision installed: nothing is imported or declared, and `import ivnext` would not fail on it."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.delitem(sys.modules, 'torchvision')
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'torchvision' else real_find_spec(name, *a))
    assert compat.guard_torchvision_import() is False
    assert 'torchvision' not in sys.modules


def test_transformers_reexports_keep_present_names_and_skip_without_transformers(monkeypatch):
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils
    own = object()
    monkeypatch.setattr(modeling_utils, 'prune_linear_layer', own, raising=False)
    monkeypatch.delattr(modeling_utils, 'apply_chunking_to_forward', raising=False)
    compat.patch_transformers_reexports()
    assert modeling_utils.prune_linear_layer is own  # a present name is kept
    assert modeling_utils.apply_chunking_to_forward is pytorch_utils.apply_chunking_to_forward
    monkeypatch.delattr(modeling_utils, 'apply_chunking_to_forward')
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'transformers' else real_find_spec(name, *a))
    compat.patch_transformers_reexports()
    assert not hasattr(modeling_utils, 'apply_chunking_to_forward')


def test_pruneable_heads_fallback_follows_transformers_4_semantics(monkeypatch):
    """transformers 5 removed the helper mmaction2's BERT imports; the fallback keeps 4.x's contract."""
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils
    heads, index = compat.find_pruneable_heads_and_indices([1, 3], n_heads=4, head_size=2, already_pruned_heads={0})
    # head 0 was pruned before: heads 1 and 3 sit at rows 0 and 2 of the 4 left; rows 1 and 3 stay
    assert heads == {1, 3} and index.dtype == torch.long and index.tolist() == [2, 3, 6, 7]
    heads, index = compat.find_pruneable_heads_and_indices([0, 0], 3, 2, set())
    assert heads == {0} and index.tolist() == [2, 3, 4, 5]
    reference = getattr(pytorch_utils, 'find_pruneable_heads_and_indices', None)
    if reference is not None:  # transformers 4.x: same results as its own
        for args in (([1, 3], 4, 2, {0}), ([2], 5, 3, {0, 4}), ([], 2, 2, set())):
            ours, theirs = compat.find_pruneable_heads_and_indices(*args), reference(*args)
            assert ours[0] == theirs[0] and torch.equal(ours[1], theirs[1])
    monkeypatch.delattr(modeling_utils, 'find_pruneable_heads_and_indices', raising=False)
    monkeypatch.delattr(pytorch_utils, 'find_pruneable_heads_and_indices', raising=False)
    compat.patch_transformers_reexports()  # transformers 5: defined from the fallback
    assert modeling_utils.find_pruneable_heads_and_indices is compat.find_pruneable_heads_and_indices


def test_non_blocking_copies_only_on_mmengine_preprocessors():
    pre = ActionDataPreprocessor(format_shape='NCTHW')
    assert pre._non_blocking is False  # mmaction2 1.2.0 cannot set it from the config
    assert compat.enable_non_blocking_copies(pre) is True and pre._non_blocking is True
    other = torch.nn.Identity()
    assert compat.enable_non_blocking_copies(other) is False and not hasattr(other, '_non_blocking')


def test_modernbert_attention_adds_entries_under_its_prefix_and_never_replaces_one(monkeypatch):
    if hasattr(modeling_modernbert, 'MODERNBERT_ATTENTION_FUNCTION'):  # transformers 4.x: ModernBERT's own table
        table = dict(modeling_modernbert.MODERNBERT_ATTENTION_FUNCTION)
        monkeypatch.setattr(modeling_modernbert, 'MODERNBERT_ATTENTION_FUNCTION', table)
    else:  # transformers 5: the public AttentionInterface
        from transformers import AttentionInterface
        table = dict(AttentionInterface._global_mapping)
        monkeypatch.setattr(AttentionInterface, '_global_mapping', table)
    config = ModernBertConfig(num_hidden_layers=1, hidden_size=8, intermediate_size=8, num_attention_heads=2)
    sdpa = table['sdpa']

    def mine(*args, **kwargs):
        return sdpa(*args, **kwargs)

    compat.use_modernbert_attention(config, 'ivnext_test', mine)
    assert config._attn_implementation == 'ivnext_test' and table['ivnext_test'] is mine
    compat.use_modernbert_attention(config, 'ivnext_test', mine)  # the same function again: fine
    with pytest.raises(ValueError, match='already registered'):
        compat.use_modernbert_attention(config, 'ivnext_test', lambda *a, **k: None)
    with pytest.raises(ValueError, match='ivnext_'):
        compat.use_modernbert_attention(config, 'sdpa', mine)
    with pytest.raises(ValueError, match='unknown ModernBERT attention'):
        compat.use_modernbert_attention(config, 'ivnext_missing')
    assert table['sdpa'] is sdpa  # transformers' own entries are untouched
    compat.use_modernbert_attention(config, 'sdpa')
    assert config._attn_implementation == 'sdpa'


def test_mmaction_sees_removed_numpy_names_and_numpy_stays_as_it_is():
    """np.trapz / np.in1d (gone in numpy 2.4) and np.Inf (gone in 2.0) reach mmaction2's modules only."""
    import numpy as np
    from mmaction.datasets.transforms.pose_transforms import PoseCompact
    from mmaction.evaluation.functional.accuracy import average_recall_at_avg_proposals
    from mmaction.evaluation.metrics.multimodal_metric import RetrievalRecall
    before = {name: hasattr(np, name) for name in ('trapz', 'in1d', 'Inf')}
    compat.patch_mmaction_numpy_aliases()
    assert {name: hasattr(np, name) for name in before} == before  # numpy itself is unchanged

    ground_truth = {'v': np.array([[0.0, 10.0], [20.0, 30.0]])}
    proposals = {'v': np.array([[0.0, 10.0, 0.9], [21.0, 30.0, 0.8], [40.0, 50.0, 0.1]])}
    recall, avg_recall, per_video, auc = average_recall_at_avg_proposals(ground_truth, proposals, 3,
                                                                         max_avg_proposals=3)
    integral = getattr(np, 'trapezoid', None) or np.trapz
    assert auc == pytest.approx(100 * integral(avg_recall, per_video) / per_video[-1]) and 0 < auc
    recalls = RetrievalRecall.calculate([[1, 0, 2], [0, 1, 2]], [[1], [2]], topk=(1, 3), pred_indices=True,
                                        target_indices=True)
    assert [float(r) for r in recalls] == [50.0, 100.0]  # sample 0 hits at rank 1, sample 1 at rank 3
    keypoint = np.zeros((1, 2, 3, 2), dtype=np.float32)
    keypoint[..., 0], keypoint[..., 1] = [[10, 20, 30], [12, 22, 32]], [[40, 50, 60], [41, 51, 61]]
    out = PoseCompact(padding=0.0, hw_ratio=None, allow_imgpad=False)(dict(img_shape=(100, 100),
                                                                           keypoint=keypoint))
    assert out['img_shape'] == (21, 22)  # the keypoints' bounding box (np.Inf as min/max start)


def test_deepspeed_optimizers_register_with_and_without_the_one_bit_module():
    """MMEngine's registration runs as it is; where DeepSpeed lacks 1-bit optimizers, the others register."""
    pytest.importorskip('deepspeed')
    from mmengine._strategy import deepspeed as strategy_module
    from mmengine.registry import OPTIMIZERS
    assert compat.patch_deepspeed_optimizer_registration() is True
    register = strategy_module.register_deepspeed_optimizers
    assert register._ivnext_wrapped and compat.patch_deepspeed_optimizer_registration() is True  # wrapped once
    names = register()
    assert {'DeepSpeedCPUAdam', 'FusedAdam', 'FusedLamb'} <= set(names) and all(n in OPTIMIZERS for n in names)

    def without_one_bit():
        raise ModuleNotFoundError("No module named 'deepspeed.runtime.fp16.onebit'",
                                  name='deepspeed.runtime.fp16.onebit')

    def other_error():
        raise ModuleNotFoundError("No module named 'deepspeed.ops'", name='deepspeed.ops')

    assert register() == names  # a second strategy in the same process: registered already, no KeyError
    fresh = {name: OPTIMIZERS.module_dict.pop(name) for name in compat.DEEPSPEED_OPTIMIZERS
             if name in OPTIMIZERS.module_dict}
    try:
        assert compat.registration_without_one_bit(without_one_bit)() == ['DeepSpeedCPUAdam', 'FusedAdam', 'FusedLamb']
        for name in ('DeepSpeedCPUAdam', 'FusedAdam', 'FusedLamb'):
            OPTIMIZERS.module_dict.pop(name)
        with pytest.raises(ModuleNotFoundError, match='deepspeed.ops'):
            compat.registration_without_one_bit(other_error)()
    finally:
        OPTIMIZERS.module_dict.update(fresh)


TIMM_MISSING = r'''
import importlib.util, sys
real_find_spec = importlib.util.find_spec


class NoTimm:
    """As if timm were not installed: no spec, and importing it fails."""

    def find_spec(self, name, path=None, target=None):
        if name == 'timm' or name.startswith('timm.'):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


importlib.util.find_spec = lambda name, *a: None if name.split('.')[0] == 'timm' else real_find_spec(name, *a)
sys.meta_path.insert(0, NoTimm())
import ivnext
from mmaction.registry import MODELS
from mmaction.utils import dependency
assert 'timm' not in sys.modules and dependency.WITH_MULTIMODAL is False
try:
    MODELS.build(dict(type='VindLURetrieval'))
except ImportError as err:
    assert 'multimodal' in str(err), err
else:
    raise AssertionError('the VindLU placeholder built')
MODELS.build(dict(type='InternVideoNextViT', arch=dict(embed_dims=16, num_layers=1, num_heads=2), img_size=28,
                  num_frames=2, use_flash_attn=False))
print('OK')
'''


def test_import_without_timm_uses_mmaction_multimodal_placeholders(tmp_path):
    """mmaction2 imports timm for VindLU without declaring it; without timm, `import ivnext` still works."""
    import subprocess
    script = tmp_path / 'no_timm.py'
    script.write_text(TIMM_MISSING)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip().endswith('OK'), out.stderr[-3000:]
    assert compat.patch_mmaction_multimodal_without_timm() is False  # timm installed here: nothing to do


def test_import_filters_only_its_listed_warnings_and_only_while_importing(tmp_path):
    """`import ivnext` shows neither mmcv-lite's nor timm's import warning, and leaves the user's filters as they
    were: the same warnings raised afterwards are shown."""
    import subprocess
    script = tmp_path / 'warnings_check.py'
    script.write_text(r'''
import warnings
warnings.simplefilter('always')
before = list(warnings.filters)
with warnings.catch_warnings(record=True) as caught:
    import ivnext
assert list(warnings.filters) == before, 'ivnext changed the warning filters'
shown = [str(w.message) for w in caught]
assert not any('MultiScaleDeformableAttention' in m or 'timm.models.layers' in m for m in shown), shown
from ivnext.compat import IMPORT_WARNINGS
with warnings.catch_warnings(record=True) as later:
    for category, message in IMPORT_WARNINGS:
        warnings.warn(message.replace('\\', ''), category)
assert len(later) == len(IMPORT_WARNINGS), later
print('OK')
''')
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip().endswith('OK'), out.stderr[-3000:]
