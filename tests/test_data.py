"""Bad input to the data pipeline, and the loader in worker processes.

Every bad case is a tiny file written here: each must end in an `MLFOError` naming the file and
the problem (at index time), or, under the skip policies, a warning, a skip and a count; never a
crash inside a worker and never an endless retry.
"""
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mlfo.config import get_preset
from mlfo.core import MLFOError
from mlfo.datasets import index_dataset, load_dataset
from mlfo.sampling import PretrainDataset, ShortVideoError, build_pretrain_loader
from mlfo.video import decode_video, probe_video, read_frames, write_frames, write_video


def ucf(root: Path, lengths=(40, 40, 40, 40), train_lines=None):
    "A two-class UCF-style tree of 64x48 mpeg4 videos."
    (root / 'ucfTrainTestlist').mkdir(parents=True, exist_ok=True)
    (root / 'ucfTrainTestlist' / 'classInd.txt').write_text('1 Left\n2 Right\n')
    rels = [f'{"Left" if i % 2 == 0 else "Right"}/v_{i}.avi' for i in range(len(lengths))]
    for r, n in zip(rels, lengths, strict=True):
        if n: write_video(root / 'videos' / r, torch.full((n, 48, 64, 3), 7 * n % 256, dtype=torch.uint8))
    lines = train_lines if train_lines is not None else ''.join(f'{r} {1 + i % 2}\n' for i, r in enumerate(rels))
    (root / 'ucfTrainTestlist' / 'trainlist01.txt').write_text(lines)
    (root / 'ucfTrainTestlist' / 'testlist01.txt').write_text(''.join(f'{r}\n' for r in rels))
    return root, rels


def test_missing_video_named_in_split(tmp_path):
    root, rels = ucf(tmp_path)
    (root / 'videos' / rels[1]).unlink()
    with pytest.raises(MLFOError, match=r'trainlist01.txt:2: missing video .*v_1.avi'):
        load_dataset('ucf101', root)
    with pytest.warns(UserWarning, match='skipping 1 unusable'):
        ds = load_dataset('ucf101', root, missing='skip')
    assert len(ds) == 3 and len(ds.problems) == 1


def test_malformed_split_line(tmp_path):
    root, _ = ucf(tmp_path, train_lines='Left/v_0.avi 1\nLeft/v_2.avi one two\n')
    with pytest.raises(MLFOError, match=r'trainlist01.txt:2: malformed line'):
        load_dataset('ucf101', root)


def test_unreadable_truncated_zero_frame(tmp_path):
    root, rels = ucf(tmp_path)
    (root / 'videos' / rels[0]).write_bytes(b'RIFF' + b'\x00' * 200)  # unreadable
    data = (root / 'videos' / rels[1]).read_bytes()
    (root / 'videos' / rels[1]).write_bytes(data[: len(data) // 3])  # truncated
    (root / 'videos' / rels[2]).write_bytes(b'')  # zero bytes
    for rel, what in zip(rels[:3], ('unreadable', 'truncated', 'empty file'), strict=True):
        with pytest.raises(MLFOError, match=what):
            probe_video(root / 'videos' / rel)
    ds = load_dataset('ucf101', root)
    with pytest.raises(MLFOError, match='v_0.avi: unreadable'):
        index_dataset(ds, 'raise', progress=False)
    ds = load_dataset('ucf101', root)
    with pytest.warns(UserWarning, match='skipping 3 unusable'):
        index_dataset(ds, 'skip', progress=False)
    assert len(ds) == 1 and len(ds.problems) == 3


def test_short_video_policies(tmp_path):
    root, _ = ucf(tmp_path, lengths=(40, 20, 40, 10))
    ds = index_dataset(load_dataset('ucf101', root), progress=False)
    with pytest.raises(ShortVideoError, match='v_1.avi: short video: 20 frames < 32'):
        PretrainDataset(ds, resize=0, short_video='raise')
    with pytest.warns(UserWarning, match=r'dropping 2 videos shorter than 32 frames \(short_video=skip\): '
                                          r'videos/Right/v_1.avi \(20\), videos/Right/v_3.avi \(10\)'):
        pre = PretrainDataset(index_dataset(load_dataset('ucf101', root), progress=False), resize=0, short_video='skip')
    assert len(pre) == 2 and sum('short video' in p for p in pre.reader.ds.problems) == 2
    loop = PretrainDataset(index_dataset(load_dataset('ucf101', root), progress=False), resize=0, short_video='loop')
    assert len(loop) == 4 and loop[3]['long'].shape == (16, 48, 64, 3)


def test_missing_frame_jpeg(tmp_path):
    f = write_frames(tmp_path / 'Left' / 'v0', torch.zeros(6, 16, 16, 3, dtype=torch.uint8))
    (f / 'image_00004.jpg').unlink()
    with pytest.raises(MLFOError, match='image_00004.jpg: missing frame JPEG'):
        read_frames(f, [0, 3])


def test_bad_video_during_training_skips_and_counts(tmp_path):
    root, rels = ucf(tmp_path)
    ds = index_dataset(load_dataset('ucf101', root), progress=False)
    pre = PretrainDataset(ds, resize=0, bad_video='skip')
    (root / 'videos' / rels[1]).write_bytes(b'\x00' * 100)  # damaged after indexing
    with pytest.warns(UserWarning, match='skipping video 1'):
        item = pre[1]
    assert item['index'] == 2 and item['skipped'] == 1
    pre.bad_video = 'raise'
    pre._bad = set()
    with pytest.raises(MLFOError, match='v_1.avi'):
        pre[1]
    for r in rels: (root / 'videos' / r).write_bytes(b'\x00' * 100)  # everything broken: a bounded number of tries
    pre.bad_video = 'skip'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(MLFOError, match='in a row'):
            pre[0]


def test_decode_beyond_end(tmp_path):
    p = write_video(tmp_path / 'a.avi', torch.zeros(40, 48, 64, 3, dtype=torch.uint8))
    with pytest.raises(MLFOError, match='not decodable'):
        decode_video(p, [39, 40])


def test_loader_with_workers(tmp_path):
    root, _ = ucf(tmp_path, lengths=(40, 45, 50, 36, 40, 44))
    cfg = get_preset('tiny', f'data.root={root}', 'data.in_memory=false', 'data.resize=32', 'data.num_workers=2',
                     'optim.batch_size=3')
    dl = build_pretrain_loader(cfg)
    seen = []
    for batch in dl:
        assert batch['a'].shape == (3, 16, 32, 43, 3) and batch['a'].dtype == torch.uint8
        seen += batch['index'].tolist()
    assert sorted(seen) == list(range(6))
    cfg = cfg.override('data.aug_device=cpu')
    batch = next(iter(build_pretrain_loader(cfg)))
    assert batch['long'].shape == (3, 3, 16, cfg.data.size, cfg.data.size) and batch['long'].dtype == torch.float32


def test_audio_only_file_and_renamed_image_are_named(tmp_path):
    "Not 'tuple index out of range' and not a 1-frame video: say what the file is."
    import av
    from PIL import Image
    sound = tmp_path / 'sound.mp4'
    with av.open(str(sound), 'w') as o:
        st = o.add_stream('aac', rate=8000)
        for i in range(4):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format='fltp', layout='mono')
            fr.sample_rate, fr.pts = 8000, i * 1024
            for pk in st.encode(fr): o.mux(pk)
        for pk in st.encode(): o.mux(pk)
    with pytest.raises(MLFOError, match='sound.mp4: no video stream \\(only audio\\)'): probe_video(sound)
    with pytest.raises(MLFOError, match='sound.mp4: no video stream'): decode_video(sound, [0])
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / 'photo.avi', format='JPEG')
    with pytest.raises(MLFOError, match=r'photo.avi: an image \(jpeg_pipe\), not a video'): probe_video(tmp_path / 'photo.avi')
