"""The synthetic data set: determinism, official split-file formats, time-reversed pairs, HMDB codes."""
import json, re

import numpy as np
import pytest

from mlfo.synthetic import (CLASSES, HMDB_LINE, HMDB_SPLIT_DIR, UCF_LINE, UCF_SPLIT_DIR, check_layout,
                            dataset_fingerprint, generate, main_synth, motion, read_avi, reversed_pairs)

TINY = dict(size=24, frames=12, groups=3, clips=1, videos=3, n_classes=2, shot_len=(4, 6))


@pytest.fixture(scope='module')
def sets(tmp_path_factory):
    d = tmp_path_factory.mktemp('synth')
    out = {}
    for name, seed, kind in (('a', 0, 'ucf'), ('b', 0, 'ucf'), ('c', 1, 'ucf'), ('h', 0, 'hmdb'), ('h2', 0, 'hmdb')):
        out[name] = generate(d / name, seed=seed, kind=kind, workers=1, progress=False, **TINY)
    return d, out


def test_same_seed_identical(sets):
    d, s = sets
    assert s['a']['fingerprint'] == s['b']['fingerprint']
    for f in sorted((d / 'a' / UCF_SPLIT_DIR).iterdir()):
        assert f.read_bytes() == (d / 'b' / UCF_SPLIT_DIR / f.name).read_bytes()
    for f in sorted((d / 'h' / HMDB_SPLIT_DIR).iterdir()):
        assert f.read_bytes() == (d / 'h2' / HMDB_SPLIT_DIR / f.name).read_bytes()
    videos = sorted((d / 'a' / 'videos').rglob('*.avi'))
    assert len(videos) == 6
    for v in videos[:3]:
        np.testing.assert_array_equal(read_avi(v), read_avi(d / 'b' / v.relative_to(d / 'a')))


def test_other_seed_differs(sets):
    d, s = sets
    assert s['a']['fingerprint'] != s['c']['fingerprint']
    v = next((d / 'a' / 'videos').rglob('*.avi'))
    assert (read_avi(v) != read_avi(d / 'c' / v.relative_to(d / 'a'))).any()


def test_ucf_split_formats(sets):
    d, _ = sets
    root = d / 'a' / UCF_SPLIT_DIR
    assert sorted(p.name for p in root.iterdir()) == ['classInd.txt'] + [f'{k}list0{i}.txt' for k in ('test', 'train') for i in (1, 2, 3)]
    lines = (root / 'classInd.txt').read_text().splitlines()
    assert [int(l.split()[0]) for l in lines] == list(range(1, len(lines) + 1))  # 1-based
    for f in root.iterdir():
        kind = re.sub(r'\d+$', '', f.stem)
        for line in f.read_text().splitlines(): assert re.match(UCF_LINE[kind], line), line
    # split 1 holds out group 1, as UCF-101 holds out groups 1-7
    assert all('_g01_' in l for l in (root / 'testlist01.txt').read_text().splitlines())
    assert not any('_g01_' in l for l in (root / 'trainlist01.txt').read_text().splitlines())
    check_layout(d / 'a')


def test_hmdb_codes(sets):
    d, s = sets
    files = sorted((d / 'h' / HMDB_SPLIT_DIR).iterdir())
    assert len(files) == 2 * 3 and all(re.match(r'^[a-z_]+_test_split[123]\.txt$', f.name) for f in files)
    for f in files:
        codes = [int(l.split()[1]) for l in f.read_text().splitlines()]
        assert all(re.match(HMDB_LINE, l) for l in f.read_text().splitlines())
        assert sorted(codes) == [1, 1, 2]
    assert s['h']['counts']['train'] == [4, 4, 4] and s['h']['counts']['test'] == [2, 2, 2]
    check_layout(d / 'h')


def test_reversed_pairs_are_time_reversals():
    rng = np.random.default_rng(0)
    s = np.linspace(0, 1, 17)
    for kind in CLASSES:
        assert len(reversed_pairs(kind)) >= 3
        for _ in range(5):
            draw = dict(cx=rng.uniform(10, 40), cy=rng.uniform(10, 40), size=rng.uniform(5, 10), angle=rng.uniform(-3, 3),
                        path=rng.uniform(10, 30), ratio=rng.uniform(2, 3), spin=rng.uniform(2, 4), phase=rng.uniform(0, 6),
                        sweep=rng.uniform(3, 5), radius=rng.uniform(8, 12), cycles=2, amp=rng.uniform(3, 6))
            for a, b in reversed_pairs(kind):
                fa, fb = motion(a, s, draw), motion(b, s, draw)
                for key in fa: np.testing.assert_allclose(fb[key], fa[key][::-1], atol=1e-12)
                assert any(np.abs(fa[k] - fb[k]).max() > 1e-3 for k in fa)  # and they do differ


def test_cache_and_fingerprint(sets):
    d, s = sets
    again = generate(d / 'a', seed=0, workers=1, progress=False, **TINY)
    assert again['cached'] and again['fingerprint'] == s['a']['fingerprint'] == dataset_fingerprint(d / 'a')
    manifest = json.loads((d / 'a' / 'manifest.json').read_text())
    assert manifest['seed'] == 0 and manifest['classes'] == ['Appear', 'Blink'] and manifest['counts']['videos'] == 6


@pytest.mark.slow
def test_full_generation_time(tmp_path):
    "The default sets (1,920 + 320 videos: benchmark v2) in under two minutes with two workers."
    out = main_synth(['--root', str(tmp_path / 'synthetic'), '--seed', '0'])
    assert [o['counts']['videos'] for o in out] == [1920, 320]
    assert sum(o['seconds'] for o in out) < 120, out


def test_glyph_per_shot(sets, tmp_path):
    d, s = sets
    assert 'glyph_per' not in json.loads((d / 'a' / 'manifest.json').read_text())['spec']  # generator 1.0's manifest
    out = generate(tmp_path / 'shot', seed=0, kind='ucf', workers=1, progress=False, glyph_per='shot', **TINY)
    assert json.loads((tmp_path / 'shot' / 'manifest.json').read_text())['spec']['glyph_per'] == 'shot'
    assert out['fingerprint'] != s['a']['fingerprint']
    v = sorted((d / 'a' / 'videos').rglob('*.avi'))
    assert any((read_avi(p) != read_avi(tmp_path / 'shot' / p.relative_to(d / 'a'))).any() for p in v)
    with pytest.raises(Exception, match='glyph_per'):
        generate(tmp_path / 'bad', seed=0, kind='ucf', workers=1, progress=False, glyph_per='frame', **TINY)


def test_lum_per_video(sets, tmp_path):
    "One brightness per video: object and background luminance and gain kept across cuts; the default manifest unchanged."
    from mlfo.synthetic import SynthSpec, _lum, plan_video
    d, s = sets
    assert 'lum_per' not in json.loads((d / 'a' / 'manifest.json').read_text())['spec']
    out = generate(tmp_path / 'lum', seed=0, kind='ucf', workers=1, progress=False, lum_per='video', **TINY)
    assert json.loads((tmp_path / 'lum' / 'manifest.json').read_text())['spec']['lum_per'] == 'video'
    assert out['fingerprint'] != s['a']['fingerprint']
    spec = SynthSpec(**{**TINY, 'lum_per': 'video'})
    for i in range(3):
        shots = plan_video(0, spec, 1, i)['shots']
        assert len(shots) > 1
        for key in ('obj_rgb', 'bg_rgb'):
            lums = [np.mean([_lum(c) for c in sh[key]]) for sh in shots]
            assert np.ptp(lums) < 0.01, (key, lums)
        assert len({sh['gain'] for sh in shots}) == 1
    frames = read_avi(tmp_path / 'lum' / 'videos' / 'Blink' / 'v_Blink_g01_c01.avi')
    assert frames.shape == (12, 24, 24, 3)
    with pytest.raises(Exception, match='lum_per'):
        generate(tmp_path / 'bad', seed=0, kind='ucf', workers=1, progress=False, lum_per='frame', **TINY)
