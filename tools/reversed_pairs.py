#!/usr/bin/env python3
"""Accuracy on the time-reversed pairs alone, for run records written before evaluation reported it.

For each record, the linear probe of its first (UCF-style) evaluation set is run again exactly as
`mlfo.results.run_ablation` ran it (same config, seed and checkpoint, the run folder's cached clip
features), now with `reversed_pairs` in its metrics (`mlfo.evaluate.pair_accuracy`). The re-run top-1
is compared with the record's: a mismatch is reported, never hidden. Records that already carry
the metric are read as they are. Writes one JSON file (default results/benchmarks/reversed-pairs.json).

Usage: python tools/reversed_pairs.py [--records KEY ...] [--out results/benchmarks/reversed-pairs.json]
"""
import argparse, json, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from mlfo.config import apply_overrides  # noqa: E402
from mlfo.core import MLFOError, atomic_write_json, device_info, file_fingerprint, git_commit  # noqa: E402
from mlfo.evaluate import evaluate  # noqa: E402
from mlfo.results import benchmark_records, find_record, read_records, run_config, work_folder  # noqa: E402


def record_setup(rec: dict, name: str, root: str) -> tuple:
    "(evaluation config on data set `name` at `root`, checkpoint, run folder) of a record, as run_ablation had them."
    cfg, _ = run_config(**rec['params'])
    ecfg = apply_overrides(cfg, {'eval.dataset': name, 'eval.root': root, 'eval.protocols': ['linear']})
    ev = rec['evaluations'][name]['checkpoint']
    ck = ev['path']
    if ck != 'random' and Path(ck).is_file() and ev.get('fingerprint') and file_fingerprint([Path(ck)]) != ev['fingerprint']:
        ck = rec['pretrain']['checkpoint']  # an exported file since overwritten by a later export: use the run's own checkpoint
    if ck != 'random' and not Path(ck).is_file(): raise MLFOError(f'{ck}: checkpoint of record {rec["key"]} is gone')
    return ecfg, ck, work_folder(cfg, rec['key'], rec['init'])  # the folder where run_ablation cached its features


def rescore(rec: dict) -> dict:
    "The record's linear probe on its first evaluation set, re-run with the reversed-pair metric."
    name, root = rec['eval_data'][0]
    lin = rec['metrics'][name]['linear']
    row = dict(key=rec['key'], label=rec['label'], init=rec['init'], seed=rec['seed'],
               epochs=rec['budget']['pretrain_epochs'], data=root, recorded_top1=lin['top1'])
    if 'reversed_pairs' in lin:
        return row | dict(top1=lin['top1'], reversed_pairs=lin['reversed_pairs'], source='record')
    ecfg, ck, run_dir = record_setup(rec, name, root)
    t0 = time.time()
    m = evaluate(ecfg, ck, out_dir=run_dir, progress=False)['metrics']['linear']
    return row | dict(top1=m['top1'], reversed_pairs=m.get('reversed_pairs'), source='re-run', checkpoint=str(ck),
                      matches_record=abs(m['top1'] - lin['top1']) < 1e-6, wall_s=round(time.time() - t0, 1))


def chosen_records(runs: str, keys=None, keep=lambda rec: True) -> list:
    "The records of `keys`, or else the benchmark's records that `keep` accepts and those on other generator seeds."
    if keys:
        recs = []
        for k in keys:
            f = find_record(runs, k)
            if f is None: raise MLFOError(f'{runs}: no record with key {k}')
            recs.append(json.loads(f.read_text()))
        return recs
    every = read_records(runs)
    recs = [r for r in benchmark_records(every) if keep(r)] + [r for r in every.values() if (r.get('params') or {}).get('pretrain_root')]
    return sorted(recs, key=lambda r: (r['init'] != 'random', r['init'] == 'supervised', r['budget']['pretrain_epochs'], r['label'], r['key']))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--records', nargs='*', help='record keys (default: the benchmark records and the supervised baseline)')
    ap.add_argument('--runs', default='results/runs')
    ap.add_argument('--out', default='results/benchmarks/reversed-pairs.json')
    a = ap.parse_args(argv)
    recs = chosen_records(a.runs, a.records)
    rows = []
    for r in recs:
        rows.append(rescore(r))
        x = rows[-1]
        rp = x['reversed_pairs']
        print(f"{x['label']:62s} {x['key']} top-1 {100 * x['top1']:5.1f}  reversed pairs {100 * rp['top1'] if rp else float('nan'):5.1f}"
              f"  ({x['source']}{'' if x.get('matches_record', True) else ', DIFFERS from the record'})", flush=True)
    atomic_write_json(ROOT / a.out, {'what': 'linear-probe accuracy on the time-reversed pairs alone (chance 0.5)',
                                     'command': 'python tools/reversed_pairs.py ' + ' '.join(argv or sys.argv[1:]),
                                     'commit': git_commit(), 'device': device_info(), 'rows': rows})
    print(f'written: {a.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
