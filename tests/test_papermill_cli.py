"""The papermill command of the running chapter (nbs/15a_running.ipynb), from a terminal, on a throwaway data set: it runs as written
(with an output notebook), prints progress lines with --log-output, warns when EPOCHS and E leave
stage 1 empty, writes the record where OUT says (not results/), and a bad parameter ends in one line
from the notebook, not a traceback of library frames."""
import json, os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NB = 'nbs/run_ablation.ipynb'
PAPERMILL = str(Path(sys.executable).parent / 'papermill')
SMALL = ['model.width=4', 'model.head_dim=8', 'data.size=16', 'optim.batch_size=4', 'eval.n_clips=1',
         'eval.linear_epochs=2', 'data.in_memory=false', 'optim.log_every=1']
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}


def papermill(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([PAPERMILL, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    from mlfo.testing import write_toy_ucf
    from mlfo.results import ensure_kernel
    ensure_kernel()
    tmp = tmp_path_factory.mktemp('papermill')
    data = write_toy_ucf(tmp / 'toy', n_classes=2, n_train=8, n_test=2, frames=32, size=(20, 20))
    args = ['-p', 'EVAL_DATA', 'synthetic', '-p', 'PRETRAIN_ROOT', str(data), '-p', 'EVAL_ROOT', str(data),
            '-p', 'WORK_DIR', str(tmp / 'work'), '-y', 'OVERRIDES: ' + json.dumps(SMALL)]
    return tmp, args


def test_readme_command_shows_progress(setup):
    tmp, args = setup
    before = sorted((ROOT / 'results' / 'runs').glob('*.json')) if (ROOT / 'results' / 'runs').exists() else []
    r = papermill(NB, str(tmp / 'out.ipynb'), '-p', 'K', '1000', '-p', 'EPOCHS', '2', '-p', 'OUT', str(tmp / 'records'),
                  *args, '--log-output')
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]
    assert 'pretraining: step' in log and 'epoch 2/2' in log and 'loss ' in log, log[-4000:]
    assert 'stage 1 (high level only) empty' in log, log[-4000:]          # E = 0.2 of 2 epochs: round(0.4) = 0
    assert len(list((tmp / 'records').glob('*.json'))) == 1
    after = sorted((ROOT / 'results' / 'runs').glob('*.json')) if (ROOT / 'results' / 'runs').exists() else []
    assert after == before                                                # results/ untouched


def test_bare_form_needs_an_output_notebook():
    "In a terminal (stdout a tty) papermill refuses the form without an output notebook, as the running chapter says."
    import pty
    leader, follower = pty.openpty()
    r = subprocess.run([PAPERMILL, NB, '-p', 'K', '1000'], cwd=ROOT, env=ENV, stdout=follower, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, text=True, timeout=120)
    os.close(follower); os.close(leader)
    assert r.returncode != 0 and "Missing argument 'OUTPUT_PATH'" in r.stderr, r.stderr


def test_bad_parameter_is_one_line(setup):
    tmp, args = setup
    r = papermill(NB, str(tmp / 'bad.ipynb'), '-p', 'CONSTRAINT', 'graph', *args)
    assert r.returncode != 0
    tail = r.stderr[r.stderr.index('PapermillExecutionError'):]
    assert "ConfigError: CONSTRAINT = 'graph' is not allowed" in tail and 'one of none, onehot' in tail, tail
    assert not any(f'mlfo/{m}.py' in tail for m in ('results', 'runs', 'suite')) and 'Cell In[' not in tail, tail   # no library frames
