#!/usr/bin/env python
"""How the embedded suite spends a CPU: one run with every core or one run per core (`--jobs`), and the layout.

Part `jobs` times the tiny preset's full MLFO training step (as `mlfo bench` builds it: random clips, the loss and the
optimiser, no data loading) in fresh processes arranged as
  - `one run, all cores`:  one process with torch threads = cores (what `mlfo results` does with --jobs 1),
  - `one run per core`:    `cores` processes with one thread each, timed together (--jobs = cores),
  - `one run, one core`:   one process with one thread, alone (how much the second thread adds),
  - `one run, compiled`:   as the first, under torch.compile (with --compile; first round only: compiling takes minutes).
Every process builds and warms up its step, then all of an arrangement start together on a signal and run for
the same seconds. The rounds alternate the arrangements, so a machine that slows down meanwhile slows them alike;
the record has each round's samples/s and the median ratio to `one run, all cores`.

Part `layout` asks whether the channels_last_3d layout (the GPU's) would speed up the fp32 step on the CPU
without changing its numbers: the samples/s of both layouts at one thread (alternating rounds in one process),
and the error of one step's loss and gradients in each against the same step in float64.

Part `stem` measures `optim.cpu_stem_wgrad` (notebook 04): the fp32 step's samples/s at one thread with the stem's
weight gradient in the default layout and in channels_last_3d (alternating rounds in one process), for R3D-18 and
SlowFast, and the error of one step's stem weight gradient in each against the same step in float64.

Part `bf16` records `mlfo.pretrain.bf16_conv_check`: the error of a CPU bf16 conv3d weight gradient against fp32
at the tiny backbone's feature-map sizes (why `optim.cpu_amp` stays off).

    python tools/bench_cpu.py [--parts jobs layout bf16 stem] [--seconds 40] [--rounds 2] [--compile] [--out results/benchmarks/cpu-suite.json]
"""
import argparse, json, math, os, statistics, subprocess, sys, time
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
        if p.stdout.readline().strip() != 'ready': raise SystemExit(f'bench_cpu: a worker ({" ".join(cmd)}) failed before its first step')
    for p in ps: p.stdin.write('go\n'); p.stdin.flush()
    runs = [json.loads(p.stdout.readline()) for p in ps]
    for p in ps: p.wait()
    return {'per_process': [round(r['samples_per_s'], 2) for r in runs], 'samples_per_s': round(sum(r['samples_per_s'] for r in runs), 2)}


def jobs(seconds: float, n_rounds: int, compile_: bool, cores: int) -> dict:
    "Each arrangement's samples/s, round after round, and its median ratio to one run on every core."
    plan = {'one run, all cores': (1, cores, False), 'one run per core': (cores, 1, False), 'one run, one core': (1, 1, False)}
    if compile_: plan['one run, compiled'] = (1, cores, True)
    rounds = {name: [] for name in plan}
    for r in range(n_rounds):
        for name, (procs, threads, comp) in plan.items():
            if comp and r > 0: continue   # compiling takes minutes: the compiled step is timed in the first round only
            rounds[name].append(arrangement(procs, threads, seconds, comp))
            print(f'round {r + 1}: {name}: {rounds[name][-1]["samples_per_s"]:.1f} samples/s', flush=True)
    base = [x['samples_per_s'] for x in rounds['one run, all cores']]
    out = {name: {'processes': p, 'threads': t, 'compile': c, 'rounds': rounds[name],
                  'ratio_to_one_run_all_cores': round(statistics.median(x['samples_per_s'] / b for x, b in zip(rounds[name], base[:len(rounds[name])], strict=True)), 3)}
           for name, (p, t, c) in plan.items()}
    for name, v in out.items(): print(f"{name}: {v['ratio_to_one_run_all_cores']:.2f}x", flush=True)
    return out


def alternating_speed(steps: dict, views: dict, batch: int, rounds: int, warmup: int = 3, per_round: int = 4) -> dict:
    "Samples/s of each of `steps` in every round; the rounds alternate the steps, so a machine that slows down slows them alike."
    for step in steps.values():
        for _ in range(warmup): step(views)
    speed = {k: [] for k in steps}
    for _ in range(rounds):
        for k, step in steps.items():
            t = time.perf_counter()
            for _ in range(per_round): step(views)
            speed[k].append(per_round * batch / (time.perf_counter() - t))
    return speed


def layout(rounds: int, batch: int = 8) -> dict:
    "channels_last_3d against the default layout for the fp32 step on the CPU: speed at one thread, error against float64."
    import contextlib, torch
    import mlfo.benchmark as B
    from mlfo.config import get_preset
    from mlfo.model import MLFO
    torch.set_num_threads(1)
    cfg = get_preset('tiny')
    to = lambda views, cl: {k: v.contiguous(memory_format=torch.channels_last_3d) for k, v in views.items()} if cl else views

    def step_grads(cl: bool, dtype=torch.float32):
        torch.manual_seed(cfg.seed)
        m = MLFO(cfg).train().to(dtype)
        m.set_epoch(cfg.loss.queue_start_epoch)
        if cl: m = m.to(memory_format=torch.channels_last_3d)
        out = m(to({k: v.to(dtype) for k, v in B.random_views(batch, cfg.data.clip_len, cfg.data.size, 'cpu', cfg.seed).items()}, cl), stage=2)
        out['loss'].backward()
        return out['loss'].item(), [p.grad.double() for p in m.parameters() if p.grad is not None]
    ref_loss, ref = step_grads(False, torch.float64)
    norm = sum(float(g.norm()) ** 2 for g in ref) ** 0.5
    rec = {'batch': batch, 'error_vs_float64': {}}
    for cl in (False, True):
        loss, grads = step_grads(cl)
        rec['error_vs_float64']['channels_last_3d' if cl else 'default'] = {
            'loss_abs': abs(loss - ref_loss), 'grad_rel': sum(float((g - r).norm()) ** 2 for g, r in zip(grads, ref, strict=True)) ** 0.5 / norm}
    steps = {}
    for cl in (False, True):
        real = B.precision
        B.precision = lambda device, optim, cl=cl: (contextlib.nullcontext(), cl)   # the fp32 step, in this layout
        try: steps[cl] = B.make_step(cfg, 'mlfo', torch.device('cpu'))[0]
        finally: B.precision = real
    views = B.random_views(cfg.optim.batch_size, cfg.data.clip_len, cfg.data.size, 'cpu', cfg.seed)
    speed = alternating_speed(steps, views, cfg.optim.batch_size, rounds, warmup=3)
    rec['samples_per_s_one_thread'] = {'default': [round(x, 2) for x in speed[False]], 'channels_last_3d': [round(x, 2) for x in speed[True]]}
    rec['ratio_channels_last_3d'] = round(statistics.median(a / b for a, b in zip(speed[True], speed[False], strict=True)), 3)
    e = rec['error_vs_float64']
    print(f"layout: channels_last_3d {rec['ratio_channels_last_3d']:.2f}x at one thread; gradient error against float64 "
          f"{e['default']['grad_rel']:.1e} (default) and {e['channels_last_3d']['grad_rel']:.1e} (channels_last_3d)", flush=True)
    return rec


def stem(rounds: int, backbones=('r3d18', 'slowfast'), batch: int = 8) -> dict:
    "The stem's weight gradient in channels_last_3d against the default layout: the fp32 step's speed at one thread, the gradient's error."
    import copy, torch
    import mlfo.benchmark as B
    from mlfo.backbones import stem_wgrad_channels_last
    from mlfo.config import get_preset
    from mlfo.model import MLFO
    torch.set_num_threads(1)
    layouts, rec = ('default', 'channels_last'), {}
    for name in backbones:
        cfgs = {lay: get_preset('tiny', f'model.backbone={name}', f'optim.cpu_stem_wgrad={lay}') for lay in layouts}

        def stem_grads(lay: str, dtype=torch.float32, cfgs=cfgs) -> dict:
            cfg = cfgs[lay]
            torch.manual_seed(cfg.seed)
            m = MLFO(cfg).train().to(dtype)
            m.set_epoch(cfg.loss.queue_start_epoch)
            stems = stem_wgrad_channels_last(m if lay == 'channels_last' else copy.deepcopy(m))
            views = {k: v.to(dtype) for k, v in B.random_views(batch, cfg.data.clip_len, cfg.data.size, 'cpu', cfg.seed).items()}
            m(views, stage=2)['loss'].backward()
            return {s: m.get_submodule(s).weight.grad.double() for s in stems}
        ref = stem_grads('default', torch.float64)
        err = {lay: max(float((g - ref[s]).norm() / ref[s].norm()) for s, g in stem_grads(lay).items()) for lay in layouts}
        steps = {lay: B.make_step(cfgs[lay], 'mlfo', torch.device('cpu'))[0] for lay in layouts}
        cfg = cfgs['default']
        views = B.random_views(cfg.optim.batch_size, cfg.data.clip_len, cfg.data.size, 'cpu', cfg.seed)
        speed = alternating_speed(steps, views, cfg.optim.batch_size, rounds, warmup=2)
        ratio = round(statistics.median(a / b for a, b in zip(speed['channels_last'], speed['default'], strict=True)), 3)
        rec[name] = {'stems': list(ref), 'stem_grad_error_vs_float64': err, 'samples_per_s_one_thread': {k: [round(x, 2) for x in v] for k, v in speed.items()},
                     'ratio_channels_last': ratio}
        print(f"stem: {name}: the fp32 step {ratio:.2f}x with the stem's weight gradient in channels_last_3d at one thread; that gradient's "
              f"error against float64 {err['default']:.1e} (default) and {err['channels_last']:.1e} (channels_last)", flush=True)
    return rec


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--worker', type=int, help=argparse.SUPPRESS)
    ap.add_argument('--seconds', type=float, default=40, help='timed seconds per arrangement and round')
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--compile', action='store_true', help='also time the compiled step (minutes of compiling per round)')
    ap.add_argument('--parts', nargs='*', default=['jobs', 'layout', 'bf16'], choices=['jobs', 'layout', 'bf16', 'stem'])
    ap.add_argument('--out', help='write the record here (JSON)')
    a = ap.parse_args(argv)
    if a.worker:
        worker(a.worker, a.seconds, a.compile)
        return {}
    sys.path.insert(0, str(ROOT))
    from mlfo.core import atomic_write_json, device_info, git_commit
    cores = os.cpu_count() or 1
    rec = {'what': "the tiny preset's full MLFO training step on the CPU: samples/s summed over the processes of each arrangement (jobs); "
                   "the channels_last_3d layout's speed and error (layout); the stem's weight gradient in channels_last_3d (stem)",
           'command': 'python tools/bench_cpu.py ' + ' '.join(sys.argv[1:] if argv is None else argv),
           'commit': git_commit(), 'date': time.strftime('%Y-%m-%dT%H:%M:%S'), 'device': device_info('cpu'), 'cores': cores,
           'load_before': os.getloadavg()}
    if 'jobs' in a.parts: rec['jobs'] = jobs(a.seconds, a.rounds, a.compile, cores)
    if 'layout' in a.parts: rec['layout'] = layout(a.rounds)
    if 'stem' in a.parts: rec['stem'] = stem(a.rounds)
    if 'bf16' in a.parts:
        from mlfo.pretrain import bf16_conv_check
        rec['bf16'] = [{**r, 'shape': list(r['shape']), 'rel_err': r['rel_err'] if math.isfinite(r['rel_err']) else str(r['rel_err'])}
                       for r in bf16_conv_check()]   # JSON has no inf or nan
        print(f"bf16: {sum(not r['ok'] for r in rec['bf16'])} of {len(rec['bf16'])} conv3d shapes off by more than 5 %", flush=True)
    if a.out: atomic_write_json(a.out, rec)
    return rec


if __name__ == '__main__':
    main()
