#!/usr/bin/env python3
"""Pretraining loader throughput per CPU core: our decoder against a baseline that mimics the authors' pipeline.

One sample = three clips (A, B, long) of 16 frames at 112x112. Everything runs in this one process
with one torch thread, so samples/s is per core; it is reported on the wall clock and per second of
process CPU time (the cost per core, less sensitive to other jobs on a shared machine). The benchmark writes a small UCF-like set
(320x240, 25 fps mpeg4 avi, 3-4 s each) and its JPEG frames into a temporary folder, then measures:

- baseline: JPEG frame folders, Pillow per-frame resize to 200x150, random resized crop and flip
  per clip, per-frame grey and colour jitter (torchvision on PIL images), to tensor, normalise;
- ours, augment on device: decode only (PyAV seek + window decode at short side 128, uint8);
  on a GPU machine the batched augmentation runs on the GPU, so the CPU cost is this;
- ours, augment on CPU: the same plus `ClipAugment` in the worker;
- the same two on videos re-encoded at short side 128 by `mlfo prepare`;
- with --torchcodec, decode only with the optional torchcodec decoder, on both sets.

Usage: python tools/bench_loader.py [--seconds 12] [--videos 24] [--content noise|ucf] [--torchcodec] [--out results/benchmarks/loader.json]
"""
import argparse, datetime, json, os, platform, random, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from mlfo.augment import ClipAugment  # noqa: E402
from mlfo.core import atomic_write_json, git_commit  # noqa: E402
from mlfo.datasets import index_dataset, load_dataset  # noqa: E402
from mlfo.prepare import prepare_dataset  # noqa: E402
from mlfo.sampling import PretrainDataset, pretrain_indices, split_window  # noqa: E402
from mlfo.video import write_frames, write_video  # noqa: E402


CONTENT = {'noise': 'moving noise texture', 'ucf': 'smooth moving shapes, faint noise'}


def make_videos(root: Path, n: int, seed: int = 0, content: str = 'noise'):
    """A UCF-style tree of n moving videos (320x240, 25 fps, 75-100 frames) plus their JPEG frames.

    content 'noise': a scrolling noise texture over a gradient (a hard case for the codec, about 14x UCF-101's
    bit rate); 'ucf': smooth moving shapes over a gradient with faint noise, near UCF-101's bit rate."""
    rng = np.random.default_rng(seed)
    (root / 'ucfTrainTestlist').mkdir(parents=True)
    classes = ['Alpha', 'Beta', 'Gamma', 'Delta']
    (root / 'ucfTrainTestlist' / 'classInd.txt').write_text(''.join(f'{i + 1} {c}\n' for i, c in enumerate(classes)))
    lines = []
    yy, xx = np.mgrid[0:240, 0:320]
    for i in range(n):
        T = int(rng.integers(75, 101))
        c = classes[i % 4]
        if content == 'noise':
            base = np.stack([(xx * (i + 1)) % 256, (yy * 2) % 256, ((xx + yy) // 2) % 256], -1).astype(np.uint8)
            tex = rng.integers(0, 60, (240 + 64, 320 + 64, 3), dtype=np.uint8)
            frames = np.stack([np.clip(base.astype(np.int16) + tex[t % 64: t % 64 + 240, (2 * t) % 64: (2 * t) % 64 + 320], 0, 255)
                               .astype(np.uint8) for t in range(T)])
        else:  # smooth background, three soft discs moving across it, faint sensor noise
            base = (0.5 * np.stack([xx / 320 * 200, yy / 240 * 160 + 40, (xx + yy) / 560 * 120 + 60], -1)).astype(np.float32)
            pos, vel = rng.uniform([0, 0], [320, 240], (3, 2)), rng.uniform(-4, 4, (3, 2))
            colour = rng.uniform(60, 255, (3, 3)).astype(np.float32)
            frames = np.empty((T, 240, 320, 3), np.uint8)
            for t in range(T):
                f = base.copy()
                for (x0, y0), col in zip(pos + t * vel, colour, strict=True):
                    a = np.exp(-(((xx - x0 % 320) ** 2 + (yy - y0 % 240) ** 2) / (2 * 25.0 ** 2)))[..., None]
                    f = f * (1 - a) + col * a
                frames[t] = np.clip(f + rng.normal(0, 3.5, f.shape), 0, 255).astype(np.uint8)
        rel = f'{c}/v_{c}_g{i:02d}_c01.avi'
        write_video(root / 'videos' / rel, frames, fps=25, gop=12, quality=4)
        write_frames(root / 'jpg' / c / f'v_{c}_g{i:02d}_c01', frames, quality=90)
        lines.append(f'{rel} {i % 4 + 1}\n')
    (root / 'ucfTrainTestlist' / 'trainlist01.txt').write_text(''.join(lines))
    (root / 'ucfTrainTestlist' / 'testlist01.txt').write_text(''.join(l.split()[0] + '\n' for l in lines))


class AuthorsBaseline:
    "Frame folders read with Pillow, each clip augmented frame by frame as in the authors' loader."
    def __init__(self, ds, frames_root: Path):
        import torchvision.transforms as T
        self.folders = [frames_root / Path(r.name).parent.name / Path(r.name).stem for r in ds.records]
        self.counts = [ds.infos[r.name].num_frames for r in ds.records]
        self.rrc = T.RandomResizedCrop(112, scale=(0.5, 1.0))
        self.jitter = T.RandomApply([T.ColorJitter(0.5, 0.5, 0.5, 0.25)], p=0.8)
        self.grey = T.RandomGrayscale(p=0.5)
        self.to_tensor, self.norm = T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        self.T = T

    def clip(self, folder, indices):
        from PIL import Image
        imgs = [Image.open(folder / f'image_{i + 1:05d}.jpg').convert('RGB').resize((200, 150), Image.BILINEAR) for i in indices]
        i, j, h, w = self.rrc.get_params(imgs[0], self.rrc.scale, self.rrc.ratio)  # one crop per clip
        flip = random.random() < 0.5
        out = []
        for im in imgs:
            im = self.T.functional.resized_crop(im, i, j, h, w, [112, 112])
            if flip: im = self.T.functional.hflip(im)
            out.append(self.norm(self.to_tensor(self.grey(self.jitter(im)))))  # per-frame colour
        return torch.stack(out, 1)  # (3, T, 112, 112)

    def __getitem__(self, k):
        idx = pretrain_indices(self.counts[k], np.random.default_rng(k))
        a, b, long = split_window(idx)
        f = self.folders[k]
        return {'a': self.clip(f, a), 'b': self.clip(f, b), 'long': self.clip(f, long)}

    def __len__(self): return len(self.folders)


def measure(ds, seconds: float) -> dict:
    "Samples/s of ds[i] over random items for about `seconds` (after one warm-up item): wall clock and process CPU time."
    rng = random.Random(0)
    ds[0]
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds or n < 3:
        item = ds[rng.randrange(len(ds))]
        n += 1
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    shapes = {k: list(item[k].shape) for k in ('a', 'b', 'long')}
    return {'samples': n, 'seconds': round(dt, 2), 'samples_per_s': round(n / dt, 2),
            'cpu_seconds': round(cpu, 2), 'samples_per_cpu_s': round(n / cpu, 2), 'shapes': shapes}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seconds', type=float, default=12, help='measuring time per pipeline')
    ap.add_argument('--videos', type=int, default=24)
    ap.add_argument('--content', choices=list(CONTENT), default='noise', help="video content: 'ucf' is near UCF-101's bit rate")
    ap.add_argument('--out', default=str(ROOT / 'results' / 'benchmarks' / 'loader.json'))
    ap.add_argument('--torchcodec', action='store_true', help='also measure the optional torchcodec decoder (data.decoder=torchcodec)')
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter('ignore')
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / 'ucf'
        t0 = time.time()
        make_videos(root, a.videos, content=a.content)
        prepare_dataset(root, Path(d) / 'ucf128', short_side=128, workers=1, progress=False)
        gen_s = time.time() - t0
        ds = index_dataset(load_dataset('ucf101', root, 1, 'train'), progress=False)
        seconds = sum(ds.infos[r.name].num_frames for r in ds.records) / 25
        kbit_s = round(sum(Path(r.path).stat().st_size for r in ds.records) * 8 / 1000 / seconds)
        ds128 = index_dataset(load_dataset('ucf101', Path(d) / 'ucf128', 1, 'train'), progress=False)
        aug = ClipAugment(size=112)
        pipes = {
            'baseline_authors_jpeg_pil': AuthorsBaseline(ds, root / 'jpg'),
            'ours_augment_on_device_decode_only': PretrainDataset(ds, resize=128),
            'ours_augment_on_cpu': PretrainDataset(ds, resize=128, transform=aug),
            'ours_prepared128_augment_on_device_decode_only': PretrainDataset(ds128, resize=128),
            'ours_prepared128_augment_on_cpu': PretrainDataset(ds128, resize=128, transform=aug),
        }
        if a.torchcodec:  # the optional decoder (needs torchcodec and FFmpeg's shared libraries)
            pipes['ours_torchcodec_augment_on_device_decode_only'] = PretrainDataset(ds, resize=128, decoder='torchcodec')
            pipes['ours_torchcodec_prepared128_augment_on_device_decode_only'] = PretrainDataset(ds128, resize=128, decoder='torchcodec')
        res = {}
        for k, p in pipes.items():
            res[k] = measure(p, a.seconds)
            print(f'{k:50s} {res[k]["samples_per_s"]:8.2f} samples/s (wall) {res[k]["samples_per_cpu_s"]:8.2f} samples/CPU-s', flush=True)
    base = res['baseline_authors_jpeg_pil']['samples_per_s']
    ratios = {k: round(v['samples_per_s'] / base, 2) for k, v in res.items() if k != 'baseline_authors_jpeg_pil'}
    base_cpu = res['baseline_authors_jpeg_pil']['samples_per_cpu_s']
    ratios_cpu = {k: round(v['samples_per_cpu_s'] / base_cpu, 2) for k, v in res.items() if k != 'baseline_authors_jpeg_pil'}
    cpu = platform.processor() or platform.machine()
    try: cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): pass
    record = {
        'what': 'pretraining samples/s per CPU core (one sample = clips A, B, long of 16x112x112), one process, torch threads 1',
        'command': 'python tools/bench_loader.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
        'machine': {'cpu_count': os.cpu_count(), 'processor': cpu, 'python': platform.python_version(), 'torch': torch.__version__,
                    'note': 'shared machine; other processes were running, figures are noisy'},
        'commit': git_commit(ROOT), 'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'data': f'{a.videos} generated mpeg4 avi videos 320x240 25 fps, 75-100 frames, gop 12, {kbit_s} kbit/s '
                f'({CONTENT[a.content]}; UCF-101 averages about 540: 6.5 GB over 13,320 clips of 7.2 s); JPEG frames at 320x240 q90',
        'generation_seconds': round(gen_s, 1), 'results': res,
        'ratio_to_baseline': ratios,  # wall clock: includes waiting for a shared core
        'ratio_to_baseline_cpu_time': ratios_cpu,  # process CPU time: the cost per core, less sensitive to other load
        'targets': {'augment_on_device': '>= 10x baseline (on this CPU-only machine: decode-only throughput stands for it)',
                    'augment_on_cpu': '>= 3x baseline'},
    }
    atomic_write_json(a.out, record)
    print(json.dumps({'wall': ratios, 'cpu_time': ratios_cpu}, indent=1))
    return record


if __name__ == '__main__':
    main()
