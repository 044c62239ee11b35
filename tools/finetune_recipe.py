#!/usr/bin/env python3
"""Finetune recipes compared on the HMDB-style set: random initialisation against one MLFO checkpoint.

Why Table 1's finetune column has its own recipe (`mlfo.results.Budget.finetune`): CoCLR's recipe
(the tiny preset's default: dropout 0.9, backbone lr / 10) is meant for hundreds of epochs. Each
line is one `mlfo.evaluate.evaluate` call with protocol `finetune` (epoch chosen on held-out training
videos, never on the test split); the HMDB-style set (8 classes, 232 training videos) keeps it cheap.

Usage: python tools/finetune_recipe.py CHECKPOINT [--epochs 30 60] [--recipes A B C] [--out FILE]
"""
import argparse, json, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from mlfo.config import apply_overrides  # noqa: E402
from mlfo.core import atomic_write_json, device_info, git_commit  # noqa: E402
from mlfo.evaluate import evaluate  # noqa: E402
from mlfo.results import at_repo_root, run_config  # noqa: E402

RECIPES = {'A': {},  # the tiny preset's default (CoCLR's): Adam lr 1e-3, backbone lr x0.1, dropout 0.9
           'B': {'eval.backbone_lr_scale': 1.0, 'eval.dropout': 0.5},
           'C': {'eval.finetune_lr': 0.003, 'eval.backbone_lr_scale': 1.0, 'eval.dropout': 0.5}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('checkpoint', help='a pretraining checkpoint of the tiny preset')
    ap.add_argument('--epochs', type=int, nargs='*', default=[30, 60])
    ap.add_argument('--recipes', nargs='*', choices=sorted(RECIPES), default=sorted(RECIPES))
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default='results/benchmarks/finetune-recipe.json')
    a = ap.parse_args(argv)
    at_repo_root()
    cfg, [(name, root)] = run_config(eval_data='synthetic-hmdb', protocols=['finetune'], seed=a.seed)
    rows = []
    for epochs in a.epochs:
        for rec in a.recipes:
            for init in ('random', a.checkpoint):
                c = apply_overrides(cfg, {'eval.dataset': name, 'eval.root': root, 'eval.finetune_epochs': epochs, **RECIPES[rec]})
                t = time.time()
                with tempfile.TemporaryDirectory() as d: m = evaluate(c, init, out_dir=d)['metrics']['finetune']
                rows.append({'recipe': rec, 'overrides': RECIPES[rec], 'epochs': epochs, 'init': 'random' if init == 'random' else 'checkpoint',
                             'top1': round(100 * m['top1'], 1), 'best_epoch': m['best_epoch'],
                             'holdout_top1': round(100 * (m['holdout_top1'] or 0), 1), 'wall_s': round(time.time() - t, 1)})
                print(json.dumps(rows[-1]), flush=True)
    atomic_write_json(ROOT / a.out, {'what': 'finetune top-1 (%) on the HMDB-style test split, random init vs a checkpoint',
                                     'checkpoint': a.checkpoint, 'command': 'python tools/finetune_recipe.py ' + ' '.join(argv or sys.argv[1:]),
                                     'commit': git_commit(), 'device': device_info(), 'rows': rows})
    print(f'written: {a.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
