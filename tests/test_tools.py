"""The analysis tools under tools/: the pieces that do not need a pretrained run."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'tools'))
import nuisance_probes as NP  # noqa: E402
from mlfo.datasets import load_dataset  # noqa: E402
from mlfo.synthetic import CLASSES, SynthSpec, generate, plan_video  # noqa: E402

TINY = dict(size=24, frames=12, groups=3, clips=2, n_classes=4, shot_len=(4, 6))


def test_ridge_r2_tells_signal_from_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, 16, generator=g)  # (V, n_clips, C)
    w = torch.randn(16, generator=g)
    y = (x.mean(1) @ w).double()
    assert NP.ridge_r2(x[:300], x[300:], y[:300], y[300:], alpha=1e-3) > 99
    noise = torch.randn(400, generator=g).double()
    assert NP.ridge_r2(x[:300], x[300:], noise[:300], noise[300:]) < 10


def test_video_draws_follow_the_generator(tmp_path):
    generate(tmp_path / 's', seed=3, kind='ucf', workers=1, progress=False, **TINY)
    ds = load_dataset('synthetic', tmp_path / 's', 1, 'train')
    draws, n_prim = NP.video_draws(str(tmp_path / 's'), ds.records)
    assert len(draws['glyph']) == len(ds.records) > 0
    spec = SynthSpec(kind='ucf', **TINY)
    name = ds.records[0].name.removeprefix('videos/')
    label, index = ds.records[0].label, int(name.split('_c')[-1][:2]) - 1 + spec.clips * (int(name.split('_g')[-1][:2]) - 1)
    assert int(draws['glyph'][0]) == plan_video(3, spec, label, index)['glyph']
    assert 0 <= float(draws['bg_lum'].min()) and float(draws['bg_lum'].max()) <= 1
    assert n_prim == len({CLASSES['ucf'][c][0] for c in spec.classes()})  # motion primitives, direction ignored
    assert set(draws['primitive'].tolist()) <= set(range(n_prim))
    with pytest.raises(Exception, match='not a video of the generator'):
        NP.video_draws(str(tmp_path / 's'), [type('R', (), {'name': 'videos/Nope/v_Nope_g01_c01.avi'})()])


def test_pathway_slice_picks_one_slowfast_pathway():
    from mlfo.backbones import build_backbone
    sf = build_backbone('slowfast', 16).eval()
    x = torch.randn(2, 3, 16, 32, 32)
    with torch.no_grad(): high = sf(x)['high'].mean(dim=(2, 3, 4))  # (B, 144): slow channels then fast channels
    with torch.no_grad(): fast = sf.stages_forward(x)[-1][1].mean(dim=(2, 3, 4))  # (B, 16) the fast pathway alone
    assert high[:, NP.pathway_slice(sf, 'slow')].shape[1] == 128
    assert torch.allclose(high[:, NP.pathway_slice(sf, 'fast')], fast, atol=1e-6)
    assert high[:, NP.pathway_slice(sf, None)].shape[1] == 144
    with pytest.raises(Exception, match='SlowFast only'):
        NP.pathway_slice(build_backbone('r3d18', 8), 'fast')


def test_finetune_recipes_are_valid_overrides_and_the_suite_uses_b():
    import finetune_recipe as FR
    from mlfo.config import apply_overrides
    from mlfo.results import SUITE_BUDGET, run_config
    cfg, _ = run_config(eval_data='synthetic-hmdb', protocols=['finetune'])
    for name, over in FR.RECIPES.items():  # every recipe is a valid override set, applied as written
        e = apply_overrides(cfg, over).eval
        assert all(getattr(e, k.split('.')[1]) == v for k, v in over.items()), name
    a = apply_overrides(cfg, FR.RECIPES['A']).eval
    assert (a.backbone_lr_scale, a.dropout) == (0.1, 0.9)  # A is the preset's own (CoCLR's) recipe
    suite = apply_overrides(cfg, dict(o.split('=') for o in SUITE_BUDGET.finetune)).eval
    b = apply_overrides(cfg, FR.RECIPES['B']).eval
    assert (suite.finetune_lr, suite.backbone_lr_scale, suite.dropout) == (b.finetune_lr, b.backbone_lr_scale, b.dropout)
