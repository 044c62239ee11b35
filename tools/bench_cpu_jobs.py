#!/usr/bin/env python
"""How to spend a CPU's cores on the embedded suite: one run with every core, or one run per core (`--jobs`).

Times the tiny preset's full MLFO training step (as `mlfo bench` builds it: random clips, the loss and the
optimiser, no data loading) in fresh processes arranged as
  - `one run, all cores`:  one process with torch threads = cores (what `mlfo results` does with --jobs 1),
  - `one run per core`:    `cores` processes with one thread each, timed together (--jobs = cores),
  - `one run, one core`:   one process with one thread, alone (how much the second thread adds),
  - `one run, compiled`:   as the first, under torch.compile (with --compile; compiling takes minutes).
Every process builds and warms up its step, then all of an arrangement start together on a signal and run for
the same seconds. The rounds alternate the arrangements, so a machine that slows down meanwhile slows them alike;
the record has each round's samples/s and the median ratio to `one run, all cores`.

    python tools/bench_cpu_jobs.py --seconds 40 --rounds 2 [--compile] [--out results/benchmarks/cpu-jobs.json]
"""
import argparse, json, os, statistics, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def worker(threads: int, seconds: float, compile_: bool) -> None:
    "One timed process: build and warm up the step, say `ready`, wait for `go` on stdin, step for `seconds`."
    import torch
    torch.set_num_threads(threads)
    from mlfo.benchmark import make_step, random_views
    from mlfo.config import get_preset
    cfg = get_preset('tiny')
    step, _ = make_step(cfg, 'mlfo', torch.device('cpu'), compile=compile_)
    views = random_views(cfg.optim.batch_size, cfg.data.clip_len, cfg.data.size, 'cpu', cfg.seed)
    for _ in range(3): step(views)
    print('ready', flush=True)
    sys.stdin.readline()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step(views); n += 1
    print(json.dumps({'steps': n, 'samples_per_s': cfg.optim.batch_size * n / (time.perf_counter() - t0)}), flush=True)


def arrangement(procs: int, threads: int, seconds: float, compile_: bool) -> dict:
    "Start `procs` workers, start them together once all are warm, and sum their samples/s."
    cmd = [sys.executable, __file__, '--worker', str(threads), '--seconds', str(seconds)] + (['--compile'] if compile_ else [])
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': str(threads)}
    ps = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
          for _ in range(procs)]
    for p in ps:
        if p.stdout.readline().strip() != 'ready': raise SystemExit(f'bench_cpu_jobs: a worker ({" ".join(cmd)}) failed before its first step')
    for p in ps: p.stdin.write('go\n'); p.stdin.flush()
    runs = [json.loads(p.stdout.readline()) for p in ps]
    for p in ps: p.wait()
    return {'per_process': [round(r['samples_per_s'], 2) for r in runs], 'samples_per_s': round(sum(r['samples_per_s'] for r in runs), 2)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--worker', type=int, help=argparse.SUPPRESS)
    ap.add_argument('--seconds', type=float, default=40, help='timed seconds per arrangement and round')
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--compile', action='store_true', help='also time the compiled step (minutes of compiling per round)')
    ap.add_argument('--out', help='write the record here (JSON)')
    a = ap.parse_args(argv)
    if a.worker:
        worker(a.worker, a.seconds, a.compile)
        return {}
    sys.path.insert(0, str(ROOT))
    from mlfo.core import atomic_write_json, device_info, git_commit
    cores = os.cpu_count() or 1
    plan = {'one run, all cores': (1, cores, False), 'one run per core': (cores, 1, False), 'one run, one core': (1, 1, False)}
    if a.compile: plan['one run, compiled'] = (1, cores, True)
    rounds = {name: [] for name in plan}
    for r in range(a.rounds):
        for name, (procs, threads, comp) in plan.items():
            rounds[name].append(arrangement(procs, threads, a.seconds, comp))
            print(f'round {r + 1}: {name}: {rounds[name][-1]["samples_per_s"]:.1f} samples/s', flush=True)
    base = [x['samples_per_s'] for x in rounds['one run, all cores']]
    rec = {'what': "samples/s of the tiny preset's full MLFO training step on the CPU, summed over the processes of each arrangement",
           'command': 'python tools/bench_cpu_jobs.py ' + ' '.join(sys.argv[1:] if argv is None else argv),
           'commit': git_commit(), 'date': time.strftime('%Y-%m-%dT%H:%M:%S'), 'device': device_info('cpu'), 'cores': cores,
           'arrangements': {name: {'processes': p, 'threads': t, 'compile': c, 'rounds': rounds[name],
                                   'ratio_to_one_run_all_cores': round(statistics.median(
                                       x['samples_per_s'] / b for x, b in zip(rounds[name], base, strict=True)), 3)}
                            for name, (p, t, c) in plan.items()}}
    for name, v in rec['arrangements'].items(): print(f"{name}: {v['ratio_to_one_run_all_cores']:.2f}x")
    if a.out: atomic_write_json(a.out, rec)
    return rec


if __name__ == '__main__':
    main()
