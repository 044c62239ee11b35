"""Downstream evaluation end to end on a toy labelled data set: checkpoints in the pretraining format,
the JSON record, the cache, the command line, and the error every bad input gets."""
import json
from pathlib import Path

import pytest
import torch

from mlfo.backbones import build_backbone
from mlfo.config import MLFOConfig
from mlfo.core import MLFOError
from mlfo.evaluate import evaluate, main, train_supervised, state_hash
from mlfo.testing import write_toy_ucf

TINY = ['model.width=4', 'data.clip_len=4', 'data.window=8', 'data.size=32', 'data.resize=0', 'data.num_workers=0',
        'eval.n_clips=2', 'eval.linear_epochs=5', 'eval.batch_size=8', 'eval.holdout=0.25', 'eval.dataset=ucf101']


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    return write_toy_ucf(tmp_path_factory.mktemp('data') / 'toy', n_classes=3, n_train=4, n_test=2, frames=12)


def _cfg(toy, tmp_path, *extra):
    return MLFOConfig().override(*TINY, f'eval.root={toy}', f'out_dir={tmp_path}', 'name=run', *extra)


def _pretrain_checkpoint(path, cfg, seed=1):
    "A checkpoint in the pretraining format: config, model (backbone.* plus head weights), epoch, step."
    torch.manual_seed(seed)
    bb = build_backbone(cfg.model.backbone, cfg.model.width)
    model = {f'backbone.{k}': v for k, v in bb.state_dict().items()}
    model['heads.high.weight'] = torch.randn(8, 32)  # non-backbone parameters are ignored
    torch.save({'config': cfg.to_dict(), 'model': model, 'epoch': 3, 'step': 30}, path)
    return bb


def test_pretrained_checkpoint_record(toy, tmp_path):
    cfg = _cfg(toy, tmp_path)
    bb = _pretrain_checkpoint(tmp_path / 'ckpt.pt', cfg)
    rec = evaluate(cfg, tmp_path / 'ckpt.pt', progress=False)
    assert rec['checkpoint']['weights'] == state_hash(bb)  # the weights evaluated are the checkpoint's
    assert rec['checkpoint']['fingerprint'] and rec['split'] == 1
    assert set(rec['metrics']) == {'linear', 'retrieval', 'retrieval_centred'}
    assert 0 <= rec['metrics']['linear']['top1'] <= 1
    assert set(rec['metrics']['retrieval']) == {'R@1', 'R@5', 'R@10', 'R@20', 'R@50'}
    path = Path(rec['path'])
    assert path == tmp_path / 'run' / 'eval' / 'ckpt-ucf101-split1.json'
    saved = json.loads(path.read_text())
    for key in ('config', 'checkpoint', 'dataset', 'split', 'metrics', 'wall_s', 'device'): assert key in saved
    assert saved['dataset']['videos'] == {'train': 9, 'holdout': 3, 'test': 6}
    # a second run reads the cached features: same numbers, no new chunks
    chunks = sorted((tmp_path / 'run' / 'eval' / 'features').rglob('chunk_*.pt'))
    again = evaluate(cfg, tmp_path / 'ckpt.pt', progress=False)
    assert again['metrics'] == rec['metrics']
    assert sorted((tmp_path / 'run' / 'eval' / 'features').rglob('chunk_*.pt')) == chunks


def test_random_differs_from_checkpoint(toy, tmp_path):
    cfg = _cfg(toy, tmp_path, 'eval.protocols=retrieval')
    _pretrain_checkpoint(tmp_path / 'ckpt.pt', cfg, seed=5)
    a = evaluate(cfg, 'random', progress=False)
    b = evaluate(cfg, tmp_path / 'ckpt.pt', progress=False)
    assert a['checkpoint']['weights'] != b['checkpoint']['weights']
    assert a['checkpoint']['path'] == 'random' and a['checkpoint']['fingerprint'] is None


def test_missing_checkpoint(toy, tmp_path):
    with pytest.raises(MLFOError, match='does not exist'): evaluate(_cfg(toy, tmp_path), tmp_path / 'nope.pt', progress=False)


def test_checkpoint_of_another_backbone(toy, tmp_path):
    cfg = _cfg(toy, tmp_path)
    torch.save(build_backbone('s3d', 4).state_dict(), tmp_path / 's3d.pt')  # a bare state dict, no config
    with pytest.raises(MLFOError, match=r's3d\.pt.*missing'): evaluate(cfg, tmp_path / 's3d.pt', progress=False)
    _pretrain_checkpoint(tmp_path / 'wide.pt', cfg.override('model.width=8'))
    with pytest.raises(MLFOError, match='model.width=8'): evaluate(cfg, tmp_path / 'wide.pt', progress=False)


def test_not_a_checkpoint(toy, tmp_path):
    (tmp_path / 'junk.pt').write_text('not a checkpoint')
    with pytest.raises(MLFOError, match='junk.pt'): evaluate(_cfg(toy, tmp_path), tmp_path / 'junk.pt', progress=False)


def test_empty_split(toy, tmp_path):
    import shutil
    root = tmp_path / 'empty'
    shutil.copytree(toy, root)
    (root / 'ucfTrainTestlist' / 'testlist01.txt').write_text('')
    with pytest.raises(MLFOError, match='empty'): evaluate(_cfg(root, tmp_path), None, progress=False)


def test_unlabelled_dataset(toy, tmp_path, monkeypatch):
    import mlfo.datasets
    real = mlfo.datasets.load_dataset
    def unlabelled(*args, **kwargs):
        ds = real(*args, **kwargs)
        for r in ds.records: r.label = -1
        return ds
    monkeypatch.setattr(mlfo.datasets, 'load_dataset', unlabelled)
    with pytest.raises(MLFOError, match='no label'): evaluate(_cfg(toy, tmp_path), None, progress=False)


def test_class_count_mismatch():
    from mlfo.evaluate import train_linear_head, topk_accuracy
    cfg = MLFOConfig().override('eval.linear_epochs=1')
    feats, labels = torch.randn(6, 2, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    with pytest.raises(MLFOError, match='class count mismatch'): train_linear_head(feats, labels, 3, cfg)
    with pytest.raises(MLFOError, match='class count mismatch'): topk_accuracy(torch.rand(6, 3), labels)


@pytest.mark.slow   # make test covers the supervised baseline in notebook 11 (train, then evaluate its checkpoint)
def test_supervised_baseline_and_finetune(toy, tmp_path):
    cfg = _cfg(toy, tmp_path, 'eval.protocols=linear,finetune', 'eval.finetune_epochs=1')
    ckpt = train_supervised(cfg, epochs=1)
    saved = torch.load(ckpt, weights_only=False)
    assert {'config', 'model', 'epoch', 'step'} <= set(saved)
    assert any(k.startswith('backbone.') for k in saved['model']) and 'head.weight' in saved['model']
    rec = evaluate(cfg, ckpt, progress=False)
    assert set(rec['metrics']) == {'linear', 'finetune'}
    assert Path(rec['path']).name == 'supervised-ucf101-split1.json'


def test_command_line(toy, tmp_path, capsys):
    from mlfo.cli import main as mlfo_main
    args = ['--checkpoint', 'random', '--quiet', *TINY, f'eval.root={toy}', f'out_dir={tmp_path}', 'name=cli']
    assert mlfo_main(['evaluate', *args]) == 0
    assert 'R@1' in capsys.readouterr().out
    assert (tmp_path / 'cli' / 'eval' / 'random-ucf101-split1.json').exists()
    assert mlfo_main(['evaluate', '--checkpoint', str(tmp_path / 'missing.pt'), *TINY, f'eval.root={toy}']) == 2
    assert 'does not exist' in capsys.readouterr().err
    with pytest.raises(MLFOError, match='--checkpoint'): main(TINY)


@pytest.mark.slow
def test_floor_and_ceiling_on_toy_data(toy, tmp_path):
    "Random init and the supervised baseline under the full tiny protocol (longer training)."
    cfg = _cfg(toy, tmp_path, 'eval.protocols=linear,retrieval,finetune', 'eval.linear_epochs=30', 'eval.finetune_epochs=5',
               'eval.n_clips=4')
    rand = evaluate(cfg, 'random', progress=False)
    sup = evaluate(cfg, train_supervised(cfg, epochs=10), progress=False)
    for rec in (rand, sup):
        for proto in ('linear', 'finetune'): assert 0 <= rec['metrics'][proto]['top1'] <= 1
    assert rand['metrics']['linear']['top1'] > 1 / 3  # colour classes are separable even from random features
