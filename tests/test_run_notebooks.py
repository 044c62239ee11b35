"""The papermill run notebook (nbs/run_ablation.ipynb) end to end on a throwaway data set.

nbdev_test skips the run notebooks (their front matter says `skip_exec: true`); this executes
run_ablation with papermill at the smallest sizes (one epoch, 16 training videos), checks the run
record it writes, that a second run with the same config and seed is skipped, and that a bad
parameter stops it with the allowed values.
"""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NB = ROOT / 'nbs' / 'run_ablation.ipynb'
SMALL = ['model.width=4', 'model.head_dim=8', 'data.size=16',
         'optim.batch_size=4', 'eval.n_clips=1', 'eval.linear_epochs=2', 'data.in_memory=false']


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    from mlfo.testing import write_toy_ucf
    from mlfo.results import ensure_kernel
    ensure_kernel()  # the python3 kernel of this venv (`python -m ipykernel install --sys-prefix` when missing)
    tmp = tmp_path_factory.mktemp('runs')
    data = write_toy_ucf(tmp / 'toy', n_classes=2, n_train=8, n_test=2, frames=32, size=(20, 20))
    params = dict(EPOCHS=1, K=1000, EVAL_DATA='synthetic', PRETRAIN_ROOT=str(data), EVAL_ROOT=str(data),
                  OVERRIDES=SMALL, OUT=str(tmp / 'records'), WORK_DIR=str(tmp / 'work'))
    return tmp, params


def execute(out, params):
    import papermill as pm
    return pm.execute_notebook(str(NB), str(out), parameters=params, kernel_name='python3', cwd=str(ROOT),
                               progress_bar=False)


def test_record_then_skip(setup):
    tmp, params = setup
    execute(tmp / 'first.ipynb', params)
    records = list((tmp / 'records').glob('*.json'))
    assert len(records) == 1, records
    rec = json.loads(records[0].read_text())
    for key in ('config', 'seed', 'commit', 'data_fingerprint', 'metrics', 'wall_s', 'device', 'key'):
        assert key in rec, key
    assert rec['config']['loss']['K'] == 1000 and rec['config']['optim']['epochs'] == 1
    assert rec['pretrain']['status'] == 'finished' and rec['pretrain']['epoch'] == 1
    assert 0 <= rec['metrics']['synthetic']['linear']['top1'] <= 1
    assert set(rec['metrics']['synthetic']['retrieval']) >= {'R@1', 'R@5'}
    assert records[0].name.endswith(f"-{rec['key']}.json")
    before = records[0].stat().st_mtime_ns
    nb = execute(tmp / 'second.ipynb', params)
    text = json.dumps(nb['cells'][-2].get('outputs', [])) + json.dumps(nb['cells'][-1].get('outputs', []))
    assert 'skipped' in text
    assert records[0].stat().st_mtime_ns == before and len(list((tmp / 'records').glob('*.json'))) == 1


@pytest.mark.parametrize('name, value, allowed', [
    ('CONSTRAINT', 'graph', 'one of none, onehot, instance, semantic, combined, combined_high'),
    ('K', 0, 'loss.K = 0 is not allowed: an integer >= 1'),
])
def test_bad_parameter(setup, name, value, allowed):
    import papermill as pm
    tmp, params = setup
    with pytest.raises(pm.PapermillExecutionError) as e:
        execute(tmp / f'bad-{name}.ipynb', params | {name: value})
    assert allowed in str(e.value) and 'ConfigError' in str(e.value)
