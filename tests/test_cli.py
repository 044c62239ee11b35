"""Every `mlfo` command once: `--help` exits 0 (and lists the shared options where the command reads a
config), a run on tiny data exits 0, a user error exits 2 with one `mlfo <command>: error:` line."""
import contextlib, io, os, subprocess, sys
from pathlib import Path

import pytest

from mlfo.cli import COMMANDS, CONFIG_COMMANDS, main
from mlfo.testing import write_toy_ucf

ROOT = Path(__file__).resolve().parent.parent
MLFO = [sys.executable, '-m', 'mlfo.cli']
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
SYNTH = ['--set', 'size=24', 'frames=12', 'groups=3', 'clips=1', 'videos=3', 'n_classes=2', 'shot_len=[4,6]']
# the tiny preset, smaller still (as in test_evaluate and test_pretrain)
TINY = ['device=cpu', 'model.width=4', 'model.head_dim=16', 'loss.K=8', 'loss.queue_len=16', 'loss.queue_start_epoch=0',
        'loss.E=0', 'data.clip_len=4', 'data.window=8', 'data.size=16', 'data.resize=0', 'data.num_workers=0',
        'data.aug_device=cpu', 'optim.batch_size=4', 'optim.epochs=1', 'eval.n_clips=1', 'eval.linear_epochs=1',
        'eval.batch_size=4', 'eval.holdout=0.25', 'eval.dataset=ucf101']


def run_main(argv) -> tuple:
    "Exit status, stdout and stderr of `mlfo <argv>` in this process, argparse's exits included."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: status = main(argv)
        except SystemExit as e: status = e.code
    return status, out.getvalue(), err.getvalue()


def shell(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([*MLFO, *args], env=ENV, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize('cmd', ['config', *COMMANDS])
def test_help(cmd):
    status, out, err = run_main([cmd, '--help'])
    assert status == 0, err
    assert out.startswith(f'usage: mlfo {cmd}'), out[:200]
    if cmd in CONFIG_COMMANDS:
        assert f'usage: mlfo {cmd} [-h] [--preset NAME | --config FILE] [key=value ...]' in out, out[:300]
        for option in ('--preset NAME', '--config FILE', 'key=value'): assert option in out.split('shared options')[1]


def test_top_level_help_lists_every_command_and_the_shared_options():
    status, out, _ = run_main(['--help'])
    assert status == 0 and all(f'  {c} ' in out for c in ['config', *COMMANDS]) and '--preset NAME' in out


# one user error per command: (arguments, what the message names)
USER_ERRORS = {
    'config': (['E=1.5'], 'loss.E'),
    'synth': (['--set', 'size'], 'expected key=value'),
    'prepare': (['/nonexistent/src', '/tmp/mlfo-never'], 'nonexistent'),
    'pretrain': (['K=0'], 'loss.K'),
    'evaluate': (['K=5'], '--checkpoint'),
    'demo': (['--epochs', 'many'], 'invalid int value'),
    'results': (['--only', 'table9'], 'invalid choice'),
    'bench': (['--preset', 'nope'], 'nope'),
}


@pytest.mark.parametrize('cmd', list(USER_ERRORS))
def test_user_error_exits_2_with_one_prefix(cmd):
    args, named = USER_ERRORS[cmd]
    status, out, err = run_main([cmd, *args])
    assert status == 2, (out, err)
    assert named in err, err
    assert err.count('error:') == 1 and f'mlfo {cmd}: error:' in err, err
    assert f'mlfo {cmd}: error: mlfo' not in err


def test_unknown_command():
    status, _, err = run_main(['fly'])
    assert status == 2 and err.strip().startswith("mlfo fly: error: unknown command 'fly'")


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "A tiny synthetic set written by `mlfo synth` from a shell (the exit status is the real one)."
    d = tmp_path_factory.mktemp('cli')
    r = shell('synth', '--root', str(d / 'synth'), '--kind', 'ucf', '--workers', '1', *SYNTH)
    assert r.returncode == 0, r.stderr[-2000:]   # 1 before: its list of summaries reached sys.exit
    assert '"fingerprint"' in r.stdout
    return d


def test_synth_config_and_help_from_a_shell(data):
    r = shell('config', '--help')
    assert r.returncode == 0 and '--preset NAME' in r.stdout, r.stderr
    r = shell('config', 'K=0')
    assert r.returncode == 2 and r.stderr.count('error:') == 1, r.stderr


def test_prepare_runs(data):
    status, out, err = run_main(['prepare', str(data / 'synth'), str(data / 'prepared'), '--short-side', '16', '--workers', '1'])
    assert status == 0, err
    assert '0 failed' in out


def test_pretrain_then_evaluate(data):
    common = [*TINY, f'data.root={data / "synth"}', f'eval.root={write_toy_ucf(data / "toy", n_classes=3, n_train=4, n_test=2, frames=12)}',
              f'out_dir={data / "runs"}', 'name=cli']
    status, out, err = run_main(['pretrain', '--preset', 'tiny', *common])
    assert status == 0, err[-2000:]
    assert '"status": "finished"' in out, out[-500:]
    status, out, err = run_main(['evaluate', '--checkpoint', 'random', '--quiet', *common])
    assert status == 0, err[-2000:]
    assert 'record:' in out


def test_bench_runs(data):
    status, out, err = run_main(['bench', *TINY, '--device', 'cpu', '--batch', '2', '--steps', '1', '--warmup', '0',
                                 '--out', str(data / 'bench')])
    assert status == 0, err[-2000:]
    assert list((data / 'bench').glob('step-*.json'))


def test_results_dry_run(data):
    status, out, err = run_main(['results', '--dry-run', '--out', str(data / 'suite'), '--progress', str(data / 'progress.json')])
    assert status == 0, err[-2000:]
    assert 'to do' in out


@pytest.mark.slow
def test_demo_runs(data):
    "The demo end to end (generates the default synthetic set once: minutes)."
    status, out, err = run_main(['demo', '--epochs', '1', '--out-dir', str(data / 'demo'), '--no-reference', '--no-supervised'])
    assert status == 0, err[-2000:]


def test_pretrain_names_an_empty_stage():
    status, _, err = run_main(['pretrain', 'optim.epochs=1', 'E=0.9'])
    assert status == 2 and 'stage 2 (every level) empty' in err, err
    status, _, err = run_main(['pretrain', 'optim.epochs=2', '--bogus'])   # the warning comes before any work
    assert 'mlfo pretrain: warning: optim.epochs=2 with loss.E=0.2 leaves stage 1' in err, err


@pytest.mark.skipif(__import__('torch').cuda.is_available(), reason='needs a machine without a GPU')
@pytest.mark.parametrize('cmd', ['evaluate', 'bench'])
def test_a_gpu_this_machine_lacks_is_one_line(cmd, tmp_path):
    "device=cuda where no GPU is visible: one line naming the device, before data or a model is touched."
    extra = ['--checkpoint', 'random', '--out', str(tmp_path / 'ev')] if cmd == 'evaluate' else ['--steps', '1', '--out', str(tmp_path)]
    status, out, err = run_main([cmd, *TINY, 'device=cuda', *extra])
    assert status == 2, (out, err)
    assert err.count('error:') == 1 and f"mlfo {cmd}: error: device='cuda:0': no CUDA GPU is visible here" in err, err
