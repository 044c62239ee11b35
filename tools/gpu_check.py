"""The GPU checks, as one short script (for a machine with one GPU and no network).

1. Training-step benchmark at paper scale (64 samples x 3 clips of 16x112x112): bare backbone,
   full MLFO step (bf16 + channels_last_3d), MLFO step in fp32; R3D-18 and S3D.
2. A paper-preset smoke run (ucf101-r3d18, batch 64) on the synthetic set, decoded once into memory.
3. The same preset reading the videos with 16 loader workers: the data-wait fraction.
Each part writes its JSON as soon as it is done, so a run cut short still returns what it measured.
`--cpu-smoke` runs everything at toy sizes on the CPU (to check the script before spending GPU time).
"""
import argparse, json, os, sys, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch

from mlfo.config import get_preset
from mlfo.core import atomic_write_json, device_info, git_commit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.environ.get('OUT', 'results/benchmarks'))
    ap.add_argument('--cpu-smoke', action='store_true')
    ap.add_argument('--parts', default='bench,smoke,loader')
    a = ap.parse_args()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    cpu = a.cpu_smoke
    dev = 'cpu' if cpu else 'cuda'
    torch.backends.cudnn.benchmark = True
    commit = git_commit(ROOT)
    if commit == 'unknown': commit = os.environ.get('MLFO_COMMIT', 'unknown')  # a copy of the tree without .git
    meta = {'date': time.strftime('%Y-%m-%d %H:%M'), 'commit': commit, 'device': device_info(dev),
            'torch': torch.__version__, 'command': 'python tools/gpu_check.py ' + ' '.join(sys.argv[1:])}
    print(json.dumps(meta), flush=True)
    parts = a.parts.split(',')
    B, T, S = (4, 16, 32) if cpu else (64, 16, 112)
    if 'bench' in parts:
        from mlfo.benchmark import step_benchmark, communication_profile, scaling_table
        for backbone, variants in (('r3d18', ('bare', 'mlfo', 'mlfo_fp32')), ('s3d', ('bare', 'mlfo'))):
            try:
                cfg = get_preset('ucf101-r3d18', f'model.backbone={backbone}', *(['model.width=8', 'K=16'] if cpu else []))
                t0 = time.time()
                r = step_benchmark(cfg, B, T, S, dev, variants=variants, steps=3 if cpu else 15, warmup=1 if cpu else 5)
                if backbone == 'r3d18':
                    prof = communication_profile(get_preset('ucf101-r3d18', 'model.width=8') if cpu else cfg, 4, T, 32, world=2)
                    r['communication'] = prof
                    r['scaling'] = scaling_table(r['variants']['mlfo']['s_per_step'], B, prof)
                r['wall_s'] = time.time() - t0
                atomic_write_json(out / f'gpu-step-{backbone}.json', {**meta, **r})
                print(backbone, json.dumps({k: round(v['samples_per_s'], 1) for k, v in r['variants'].items()}),
                      {k: r[k] for k in r if k.startswith('mlfo_') or k == 'bf16_speedup'}, flush=True)
            except Exception:
                traceback.print_exc()
    if 'smoke' in parts or 'loader' in parts:
        from mlfo.synthetic import generate
        root = '/tmp/mlfo-synth'
        t0 = time.time()
        print(json.dumps(generate(root, seed=0, kind='ucf', workers=os.cpu_count() or 2, progress=False)), flush=True)
        print(f'synthetic set in {time.time() - t0:.1f}s', flush=True)
        from mlfo.pretrain import pretrain, read_metrics
        runs = []
        if 'smoke' in parts: runs.append(('smoke', ['data.in_memory=true', 'data.num_workers=0'], 2 if cpu else 20))
        if 'loader' in parts: runs.append(('loader', ['data.in_memory=false', f'data.num_workers={2 if cpu else 16}'], 1 if cpu else 6))
        for name, extra, epochs in runs:
            try:
                over = ['data.dataset=synthetic', f'data.root={root}', f'name={name}', 'out_dir=/tmp/mlfo-runs',
                        f'optim.epochs={epochs}', 'optim.log_every=5', 'optim.ckpt_every=100000', f'device={dev}', *extra]
                if cpu: over += ['model.width=8', 'K=16', 'optim.batch_size=4', 'data.size=32', 'data.resize=32']
                cfg = get_preset('ucf101-r3d18', *over)
                t0 = time.time()
                s = pretrain(cfg, resume=False, progress=False)
                m = read_metrics(s['run_dir'])
                steady = m[len(m) // 3:] or m   # leave out the first third (cuDNN autotuning, worker start)
                rec = {**meta, 'run': name, 'overrides': over, 'steps': s['step'], 'wall_s': time.time() - t0,
                       'samples_per_s_mean': sum(r['samples_per_s'] for r in steady) / len(steady),
                       'data_wait_mean': sum(r['data_wait'] for r in steady) / len(steady),
                       'first_loss': m[0]['loss'], 'last_loss': m[-1]['loss'], 'metrics': m,
                       'peak_mem_gib': torch.cuda.max_memory_allocated() / 2**30 if not cpu else None}
                atomic_write_json(out / f'gpu-{name}.json', rec)
                print(name, {k: rec[k] for k in ('steps', 'wall_s', 'samples_per_s_mean', 'data_wait_mean', 'first_loss', 'last_loss')}, flush=True)
            except Exception:
                traceback.print_exc()


if __name__ == '__main__':
    main()
