#!/usr/bin/env python3
"""Does a pretraining reproduce bit for bit, and does the CPU thread count change its numbers?

Runs the tiny preset's full MLFO step, shrunk as the pretraining tests shrink it (`mlfo.testing.SHRUNK_TINY`: width
8, 16x16 crops, batch 8, 4 epochs of a 4-class synthetic set of 24 training videos: 12 steps), as fresh `mlfo
pretrain` processes at one and at two threads (two runs each, one after the other), and compares their final weights
tensor by tensor: bit-identical or not, and the largest absolute difference. Writes one JSON file
(default results/benchmarks/threads-reproducibility.json).

Usage: python tools/threads_repro.py [--threads 1 2] [--repeats 2] [--out results/benchmarks/threads-reproducibility.json]
"""
import argparse, itertools, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import torch  # noqa: E402
from mlfo.checkpoint import Checkpointer  # noqa: E402
from mlfo.core import atomic_write_json, device_info, git_commit  # noqa: E402
from mlfo.synthetic import generate  # noqa: E402
from mlfo.testing import SHRUNK_SYNTH, SHRUNK_TINY  # noqa: E402

SYNTH, SMALL = SHRUNK_SYNTH, {**SHRUNK_TINY, 'optim.ckpt_every': 100}  # the pretraining tests' shrunk step


def pretrain(root: Path, out: Path, name: str, threads: int) -> dict:
    "One fresh `mlfo pretrain` process at `threads` threads; its final floating-point weights."
    items = {**SMALL, 'data.root': str(root), 'out_dir': str(out), 'name': name}
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads), 'MKL_NUM_THREADS': str(threads)}
    cmd = [sys.executable, '-m', 'mlfo.cli', 'pretrain', '--preset', 'tiny', *(f'{k}={v}' for k, v in items.items())]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if r.returncode: sys.exit(f'threads_repro: run {name} failed: {r.stderr.strip().splitlines()[-1:]}')
    ck = torch.load(Checkpointer(out / name / 'checkpoints').latest(), map_location='cpu', weights_only=False)
    return {'step': ck['step'], 'weights': {k: v for k, v in ck['model'].items() if v.dtype.is_floating_point}}


def compare(a: dict, b: dict) -> dict:
    wa, wb = a['weights'], b['weights']
    return {'bit_identical': all(torch.equal(wa[k], wb[k]) for k in wa),
            'max_abs_diff': max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa),
            'steps': [a['step'], b['step']]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--out', default=str(ROOT / 'results' / 'benchmarks' / 'threads-reproducibility.json'))
    a = ap.parse_args()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / 'synthetic'
        generate(root, seed=0, kind='ucf', workers=1, progress=False, **SYNTH)
        runs = {(t, i): pretrain(root, Path(tmp) / 'runs', f't{t}-r{i}', t) for t in a.threads for i in range(a.repeats)}
    pairs = [{'threads': [t, t], 'runs': [0, i], **compare(runs[t, 0], runs[t, i])}
             for t in a.threads for i in range(1, a.repeats)]
    pairs += [{'threads': [s, t], 'runs': [0, 0], **compare(runs[s, 0], runs[t, 0])} for s, t in itertools.combinations(a.threads, 2)]
    out = {'what': "final weights of fresh tiny pretrainings (seed 0, 12 steps) at equal and at different CPU thread counts",
           'command': 'python tools/threads_repro.py ' + ' '.join(sys.argv[1:]), 'commit': git_commit(),
           'date': time.strftime('%Y-%m-%dT%H:%M:%S'), 'device': device_info(torch.device('cpu')), 'config': SMALL,
           'data': SYNTH, 'pairs': pairs, 'wall_s': round(time.time() - t0, 1)}
    atomic_write_json(a.out, out)
    for p in pairs:
        print(f"threads {p['threads']}: " + ('bit-identical' if p['bit_identical'] else f"apart, max |dw| {p['max_abs_diff']:.3g}"))
    return 0


if __name__ == '__main__':
    sys.exit(main())
