"""The GPU checks, as one short script (for a machine with one GPU and no network).

Parts (`--parts`, in this order):
- cells: the `#| cuda` test cells of the notebooks (tools/run_cells.py: no Jupyter needed).
- bench: the training-step benchmark at paper scale (64 samples x 3 clips of 16x112x112): bare backbone,
  full MLFO step (bf16 + channels_last_3d), MLFO step in fp32 (`--backbones`, `--variants`).
- suite: the embedded suite on the GPU, `mlfo results --via process --jobs N` (a plain Python process per
  run), for `--suite-minutes`; the new run records are packed into suite-records.tar as they land, and the
  progress record (runs, wall times) is kept beside it.
- tiny: the tiny preset's pretraining on the GPU, one process (steps/s against the suite's CPU runs), with a
  checkpoint every 10 steps and a resume from it.
- profile: torch.profiler's top operations of one tiny-preset MLFO step and of one per-sample augmentation of a
  32-clip view (what the tiny preset's training does per view), with the launch counts: gpu-profile.json/.txt.
- smoke: a paper-preset run (ucf101-r3d18, batch 64) on the synthetic set, decoded once into memory.
- loader: the same preset reading the videos with 16 loader workers: the data-wait fraction.
Each part writes its files as soon as it is done, so a run cut short still returns what it measured.
`--cpu-smoke` runs everything at toy sizes on the CPU (to check the script before spending GPU time).
"""
import argparse, io, json, os, signal, subprocess, sys, tarfile, threading, time, traceback
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
    ap.add_argument('--parts', default='cells,bench,suite')
    ap.add_argument('--backbones', default='r3d18,s3d')
    ap.add_argument('--variants', default='bare,mlfo,mlfo_fp32')
    ap.add_argument('--steps', type=int, default=15)
    ap.add_argument('--suite-only', default='table2,table3,figure3,table1,table4', help='artefacts, in order')
    ap.add_argument('--suite-args', default='', help='more `mlfo results` options, e.g. "--seeds 0 --epochs 1"')
    ap.add_argument('--suite-jobs', type=int, default=16)
    ap.add_argument('--suite-minutes', type=float, default=6.0, help='then the suite is interrupted (records so far are kept)')
    a = ap.parse_args()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    cpu = a.cpu_smoke
    dev = 'cpu' if cpu else 'cuda'
    torch.backends.cudnn.benchmark = True
    commit = git_commit(ROOT)   # a copy of the tree without .git: $MLFO_COMMIT
    meta = {'date': time.strftime('%Y-%m-%d %H:%M'), 'commit': commit, 'device': device_info(dev),
            'torch': torch.__version__, 'command': 'python tools/gpu_check.py ' + ' '.join(sys.argv[1:])}
    print(json.dumps(meta), flush=True)
    parts = a.parts.split(',')
    B, T, S = (4, 16, 32) if cpu else (64, 16, 112)
    if 'cells' in parts:
        t0 = time.time()
        rc = subprocess.run([sys.executable, str(ROOT / 'tools' / 'run_cells.py'), 'nbs/03c_augment.ipynb',
                             *(['--flags', 'cuda'] if not cpu else [])], cwd=ROOT).returncode
        atomic_write_json(out / 'gpu-cells.json', {**meta, 'notebooks': ['nbs/03c_augment.ipynb'], 'flags': [] if cpu else ['cuda'],
                                                   'status': rc, 'wall_s': time.time() - t0})
    if 'bench' in parts:
        from mlfo.benchmark import step_benchmark, communication_profile, scaling_table
        for backbone in a.backbones.split(','):
            variants = tuple(v for v in a.variants.split(',') if not (cpu and v == 'mlfo_fp32'))
            try:
                cfg = get_preset('ucf101-r3d18', f'model.backbone={backbone}', *(['model.width=8', 'K=16'] if cpu else []))
                t0 = time.time()
                r = step_benchmark(cfg, B, T, S, dev, variants=variants, steps=3 if cpu else a.steps, warmup=1 if cpu else 5)
                if backbone == 'r3d18' and 'comm' in parts:
                    prof = communication_profile(get_preset('ucf101-r3d18', 'model.width=8') if cpu else cfg, 4, T, 32, world=2)
                    r['communication'] = prof
                    r['scaling'] = scaling_table(r['variants']['mlfo']['s_per_step'], B, prof)
                r['wall_s'] = time.time() - t0
                atomic_write_json(out / f'gpu-step-{backbone}.json', {**meta, **r})
                print(backbone, json.dumps({k: round(v['samples_per_s'], 1) for k, v in r['variants'].items()}),
                      {k: r[k] for k in r if k.startswith('mlfo_') or k == 'bf16_speedup'}, flush=True)
            except Exception:
                traceback.print_exc()
    if 'profile' in parts:
        try: profile_part(out, meta, dev)
        except Exception: traceback.print_exc()
    if 'tiny' in parts:
        try: tiny_part(out, meta, dev)
        except Exception: traceback.print_exc()
    if 'suite' in parts:
        run_suite_part(a, out, meta, cpu)
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


def profile_part(out: Path, meta: dict, dev: str, top: int = 25):
    "Where a tiny step's time goes: the model step on random clips, and the per-sample augmentation of one view."
    from torch.profiler import ProfilerActivity, profile
    from mlfo.augment import BatchAugment
    from mlfo.benchmark import make_step, random_views
    cfg = get_preset('tiny')
    device = torch.device(dev)
    step, _ = make_step(cfg, 'mlfo', device)
    views = random_views(cfg.optim.batch_size, cfg.data.clip_len, cfg.data.size, device)
    aug = BatchAugment.from_config(cfg.data).to(device)
    clips = torch.randint(0, 256, (cfg.optim.batch_size, cfg.data.clip_len, 40, 40, 3), dtype=torch.uint8, device=device)
    seeds = list(range(cfg.optim.batch_size))
    work = {'mlfo_step': lambda: step(views), 'augment_view': lambda: aug(clips, seeds=seeds)}
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])
    rec, text = {**meta, 'preset': 'tiny', 'batch': cfg.optim.batch_size}, []
    for name, fn in work.items():
        for _ in range(3): fn()   # warm-up (cuDNN autotuning, caches)
        if device.type == 'cuda': torch.cuda.synchronize()
        t0 = time.perf_counter()
        with profile(activities=acts) as prof:
            for _ in range(3): fn()
            if device.type == 'cuda': torch.cuda.synchronize()
        wall = (time.perf_counter() - t0) / 3
        events = prof.key_averages()
        launches = sum(e.count for e in events if e.key in ('cudaLaunchKernel', 'cuLaunchKernel', 'cudaLaunchKernelExC')) / 3
        sort = 'self_cuda_time_total' if device.type == 'cuda' else 'self_cpu_time_total'
        rec[name] = {'wall_s_per_call': wall, 'kernel_launches_per_call': launches,
                     'top': [{'op': e.key, 'calls': e.count / 3,
                              'self_cpu_ms': e.self_cpu_time_total / 3e3,
                              'self_device_ms': getattr(e, 'self_device_time_total', 0) / 3e3}
                             for e in sorted(events, key=lambda e: -getattr(e, sort.replace('cuda', 'device'), getattr(e, sort, 0)))[:top]]}
        try: table = events.table(sort_by=sort, row_limit=top)
        except Exception: table = events.table(sort_by='self_cpu_time_total', row_limit=top)   # a build that names the column otherwise
        text.append(f'== {name}: {wall * 1e3:.1f} ms a call, {launches:.0f} kernel launches\n' + table)
        print(f'profile {name}: {wall * 1e3:.1f} ms a call, {launches:.0f} kernel launches', flush=True)
    atomic_write_json(out / 'gpu-profile.json', rec)
    (out / 'gpu-profile.txt').write_text('\n\n'.join(text))


def tiny_part(out: Path, meta: dict, dev: str):
    "The tiny preset on a small synthetic set: train, checkpoint, resume; the step rate of one process."
    from mlfo.synthetic import generate
    from mlfo.pretrain import pretrain, read_metrics
    root = Path('/tmp/mlfo-tiny-set')
    generate(root, seed=0, kind='ucf', workers=os.cpu_count() or 2, progress=False,
             size=32, frames=32, groups=8, clips=2, n_classes=4, shot_len=(8, 16))   # 64 videos: 2 steps of 32
    over = [f'data.root={root}', 'out_dir=/tmp/mlfo-tiny-runs', 'name=tiny', f'device={dev}', 'optim.log_every=2',
            'optim.ckpt_every=10']
    t0 = time.time()
    n = 40 if dev == 'cpu' else 200   # one step per epoch
    pretrain(get_preset('tiny', *over, f'optim.epochs={n}'), resume=False, progress=False)
    t1 = time.time()
    s = pretrain(get_preset('tiny', *over, f'optim.epochs={n + 10}'), resume=True, progress=False)   # resumes from its last epoch
    m = read_metrics(s['run_dir'])
    steady = [r for r in m[len(m) // 4:] if 'samples_per_s' in r] or m
    rec = {**meta, 'run': 'tiny', 'overrides': over, 'steps': s['step'], 'first_wall_s': t1 - t0, 'resume_wall_s': time.time() - t1,
           'samples_per_s_mean': sum(r['samples_per_s'] for r in steady) / len(steady), 'last_loss': m[-1].get('loss')}
    atomic_write_json(out / 'gpu-tiny.json', rec)
    print('tiny:', {k: rec[k] for k in ('steps', 'first_wall_s', 'resume_wall_s', 'samples_per_s_mean', 'last_loss')}, flush=True)


def run_suite_part(a, out: Path, meta: dict, cpu: bool):
    "`mlfo results --via process --jobs N` for a while; pack each new record into suite-records.tar as it lands."
    runs, logs = (out / 'cpu-smoke-runs' if cpu else ROOT / 'results' / 'runs'), ROOT / 'results' / '_scratch' / 'notebooks'
    runs.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in runs.glob('*.json')}
    progress = out / 'suite-progress.json'
    cmd = [sys.executable, '-m', 'mlfo.cli', 'results', '--via', 'process', '--jobs', str(a.suite_jobs), '--no-render',
           '--only', *a.suite_only.split(','), '--progress', str(progress), '--out', str(runs.resolve()), *a.suite_args.split()]
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
    t0 = time.time()
    print(' '.join(cmd), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    done = threading.Event()

    def pack():
        "The new records and every run log, in one tar written atomically (the files that come back are few)."
        new = sorted(p for p in runs.glob('*.json') if p.name not in before)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode='w') as tar:
            for p in new: tar.add(p, arcname=f'runs/{p.name}')
            for p in sorted(logs.glob('run-*.log')): tar.add(p, arcname=f'logs/{p.name}')
        tmp = Path('/tmp/suite-records.tar.tmp'); tmp.write_bytes(buf.getvalue()); os.replace(tmp, out / 'suite-records.tar')
        return len(new)

    def packer():
        while not done.wait(20): pack()
    th = threading.Thread(target=packer, daemon=True); th.start()
    try: proc.wait(timeout=a.suite_minutes * 60)
    except subprocess.TimeoutExpired:
        print(f'suite: {a.suite_minutes} min reached: interrupting', flush=True)
        os.killpg(proc.pid, signal.SIGINT)
        try: proc.wait(timeout=30)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    done.set(); th.join()
    n = pack()
    try: state = json.loads(progress.read_text())
    except (OSError, ValueError): state = {}
    walls = [r['wall_s'] for r in state.get('runs', []) if r.get('wall_s')]
    rec = {**meta, 'command': ' '.join(cmd[1:]), 'jobs': a.suite_jobs, 'wall_s': time.time() - t0, 'new_records': n,
           'done': state.get('done'), 'failed': state.get('failed'), 'todo': state.get('todo'),
           'run_wall_s': walls, 'runs_per_hour': 3600 * len(walls) / (time.time() - t0) if walls else 0.0}
    atomic_write_json(out / ('suite-cpu.json' if cpu else 'suite-gpu.json'), rec)
    print('suite:', {k: rec[k] for k in ('jobs', 'wall_s', 'new_records', 'done', 'failed', 'todo', 'runs_per_hour')}, flush=True)


if __name__ == '__main__':
    main()
