#!/usr/bin/env python3
"""What pretrained features encode besides the class: linear probes for the synthetic set's nuisances.

The synthetic generator knows every video's draws (`mlfo.synthetic.plan_video`): the object's glyph
(kept for the whole video, not tied to the class), each shot's background and object brightness,
distractors, object size. For each run record, the frozen backbone's clip features of the UCF-style
set (the run folder's feature cache, or extracted there) are probed for:
- categorical targets, with the linear-probe recipe of the record's config (`train_linear_head`,
  the same held-out epoch selection): class (16), glyph identity (8), motion primitive with the
  direction ignored (10), direction within the time-reversed pairs (2);
- continuous targets, with ridge regression on standardised video features (R^2 on the test split):
  mean background luminance, fraction of shots with the object brighter than the background,
  fraction of shots with a distractor, mean object size.
With `--also-on ROOT ...` each pretrained checkpoint is also probed on other generated sets (a
checkpoint trained on one generator seed, probed on another). Writes one JSON file.

Usage: python tools/nuisance_probes.py [--records KEY ...] [--also-on ROOT ...] [--out results/benchmarks/nuisance-probes.json]
"""
import argparse, json, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / 'tools'))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mlfo import synthetic as S  # noqa: E402
from mlfo.core import MLFOError, atomic_write_json, device_info, git_commit  # noqa: E402
from mlfo.evaluate import (build_eval_backbone, eval_features, predict_features, stratified_holdout,  # noqa: E402
                           topk_accuracy, train_linear_head)
from reversed_pairs import chosen_records, record_setup  # noqa: E402

CONTINUOUS = ('bg_lum', 'obj_brighter', 'distractor', 'size')  # targets probed by ridge regression


def video_draws(root: str, records) -> dict:
    "Per-video targets, from the generator's plan of each video of `records` (names as in the split files)."
    man = json.loads((Path(root) / 'manifest.json').read_text())
    spec = S.SynthSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in man['spec'].items()})
    where = {p: (label, i) for p, label, i in S.video_list(spec)}
    classes = spec.classes()
    prims = sorted({S.CLASSES[spec.kind][c][0] for c in classes})
    paired = {S.CLASSES[spec.kind][a][0] for a, _ in S.reversed_pairs(spec.kind)}
    out = {k: [] for k in ('glyph', 'primitive', 'paired', 'reversed', 'bg_lum', 'obj_brighter', 'distractor', 'size')}
    for r in records:
        name = r.name.removeprefix('videos/')  # split files name videos relative to videos/
        if name not in where: raise MLFOError(f'{root}: {r.name} is not a video of the generator (manifest {man["name"]})')
        label, i = where[name]
        plan = S.plan_video(man['seed'], spec, label, i)
        prim, rev = S.CLASSES[spec.kind][classes[label]]
        bg = [np.mean([S._lum(c) for c in s['bg_rgb']]) for s in plan['shots']]
        ob = [np.mean([S._lum(c) for c in s['obj_rgb']]) for s in plan['shots']]
        for k, v in (('glyph', plan['glyph']), ('primitive', prims.index(prim)), ('paired', prim in paired),
                     ('reversed', int(rev)), ('bg_lum', np.mean(bg)), ('obj_brighter', np.mean([o > b for o, b in zip(ob, bg, strict=True)])),
                     ('distractor', np.mean([s['distractor'] for s in plan['shots']])),
                     ('size', np.mean([s['size'] for s in plan['shots']]))):
            out[k].append(v)
    return {k: torch.tensor(np.array(v, dtype=np.float64 if k in CONTINUOUS else np.int64))
            for k, v in out.items()}, len(prims)


def categorical(cfg, tr, te, ytr, yte, n, seed) -> float:
    "Test top-1 (%) of the record's linear-probe recipe on target `y`."
    fit, held = stratified_holdout(ytr, cfg.eval.holdout, seed)
    head, _ = train_linear_head(tr[fit], ytr[fit], n, cfg, tr[held], ytr[held], seed)
    return 100 * topk_accuracy(predict_features(head, te), yte, (1,))['top1']


def ridge_r2(tr, te, ytr, yte, alpha: float = 10.0) -> float:
    "Test R^2 (%) of ridge regression on standardised video features (the mean over clips)."
    a, b = tr.mean(1).double(), te.mean(1).double()
    mu, sd = a.mean(0), a.std(0).clamp_min(1e-6)
    a, b = (a - mu) / sd, (b - mu) / sd
    ym = ytr.mean()
    w = torch.linalg.solve(a.T @ a + alpha * torch.eye(a.shape[1], dtype=a.dtype), a.T @ (ytr - ym))
    res = yte - (b @ w + ym)
    return 100 * float(1 - res.var() / yte.var())


def pathway_slice(backbone, pathway: str | None) -> slice:
    "The channels of the pooled high-level feature that one SlowFast pathway makes (all channels for None)."
    if pathway is None: return slice(None)
    if not hasattr(backbone, 'pathways'): raise MLFOError(f'--pathway {pathway}: {type(backbone).__name__} has one pathway (SlowFast only)')
    n_slow = backbone.pathways['high'][0]
    return slice(0, n_slow) if pathway == 'slow' else slice(n_slow, None)


def probe(rec: dict, root: str, pathway: str | None = None) -> dict:
    "Every probe of one record's checkpoint on the UCF-style set at `root` (on one SlowFast pathway's channels when asked)."
    name = rec['eval_data'][0][0]
    ecfg, ck, run_dir = record_setup(rec, name, root)
    t0 = time.time()
    backbone = build_eval_backbone(ecfg, ck)
    train, test, f = eval_features(backbone, ecfg, run_dir, progress=False)
    (dtr, n_prim), (dte, _) = video_draws(root, train.records), video_draws(root, test.records)
    sl = pathway_slice(backbone, pathway)
    tr, te, seed = f['train']['features'][..., sl], f['test']['features'][..., sl], ecfg.seed  # (N, clips, C)
    ltr, lte = f['train']['labels'], f['test']['labels']
    pr, pe = dtr['paired'].bool(), dte['paired'].bool()
    row = {'class': categorical(ecfg, tr, te, ltr, lte, len(train.classes), seed),
           'glyph': categorical(ecfg, tr, te, dtr['glyph'], dte['glyph'], len(S._GLYPHS['ucf']), seed),
           'primitive': categorical(ecfg, tr, te, dtr['primitive'], dte['primitive'], n_prim, seed),
           'direction_in_pairs': categorical(ecfg, tr[pr], te[pe], dtr['reversed'][pr], dte['reversed'][pe], 2, seed)}
    row |= {f'{k}_r2': ridge_r2(tr, te, dtr[k], dte[k]) for k in CONTINUOUS}
    pre = rec['params'].get('pretrain_root') or rec['config']['data']['root']
    out = dict(key=rec['key'], label=rec['label'], init=rec['init'], seed=rec['seed'], epochs=rec['budget']['pretrain_epochs'],
               pretrained_on=None if rec['init'] == 'random' else pre, probed_on=root, checkpoint=str(ck), pathway=pathway,
               features=tr.shape[-1],
               probes={k: round(v, 1) for k, v in row.items()}, wall_s=round(time.time() - t0, 1))
    if root == rec['eval_data'][0][1] and pathway is None:  # the class probe is the record's own linear probe: it must give the same top-1
        out['record_top1'] = round(100 * rec['metrics'][name]['linear']['top1'], 1)
        out['matches_record'] = abs(row['class'] - out['record_top1']) < 0.05
    return out


CHANCE = {'class': '16 classes, chance 6.3', 'glyph': '8 glyphs, chance 12.5', 'primitive': '10 primitives (direction ignored), chance 10',
          'direction_in_pairs': 'time-reversed pairs only, 2 directions, chance 50',
          'bg_lum_r2': 'mean background luminance, R^2 %', 'obj_brighter_r2': 'fraction of shots with the object brighter than the background, R^2 %',
          'distractor_r2': 'fraction of shots with a distractor, R^2 %', 'size_r2': 'mean object size, R^2 %'}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--records', nargs='*', help='record keys (default: random init, supervised and the 160-epoch MLFO runs on every generator seed)')
    ap.add_argument('--also-on', nargs='*', default=[], help='more generated UCF-style sets to probe every pretrained checkpoint on')
    ap.add_argument('--pathway', nargs='*', choices=['both', 'slow', 'fast'], default=['both'],
                    help='SlowFast records: probe all channels and/or one pathway\'s channels of the high level')
    ap.add_argument('--runs', default='results/runs')
    ap.add_argument('--out', default='results/benchmarks/nuisance-probes.json')
    a = ap.parse_args(argv)
    recs = chosen_records(a.runs, a.records, keep=lambda r: r['init'] != 'mlfo' or r['budget']['pretrain_epochs'] == 160)
    rows = []
    for r in recs:
        own = r['eval_data'][0][1]
        roots = [own] + [x for x in a.also_on if x != own and r['init'] == 'mlfo']
        for root, pw in [(root, pw) for root in roots for pw in a.pathway]:
            rows.append(probe(r, root, None if pw == 'both' else pw))
            x = rows[-1]
            print(f"{x['label'][-40:]:40s} {x['key']} on {root:24s} {pw:4s} " + ' '.join(f'{k} {v:5.1f}' for k, v in x['probes'].items())
                  + ('' if x.get('matches_record', True) else '  (class probe DIFFERS from the record)'), flush=True)
    atomic_write_json(ROOT / a.out, {'what': 'linear probes of frozen features for the class and for nuisances of the synthetic set',
                                     'targets': CHANCE, 'command': 'python tools/nuisance_probes.py ' + ' '.join(argv or sys.argv[1:]),
                                     'commit': git_commit(), 'device': device_info(), 'rows': rows})
    print(f'written: {a.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
