"""Host synchronisation in the training step: with the losses' value checks off (as the training loop runs
on a GPU) one MLFO step of the tiny preset, forward, backward, Adam and the step hooks, reads nothing back
from the device, for every ablation's set of terms; with the checks on, bad input still gets its MLFOError."""
import pytest
import torch

from mlfo.benchmark import count_host_syncs, make_step, random_views
from mlfo.config import get_preset
from mlfo.core import MLFOError, checks_enabled, input_checks
from mlfo.model import MLFO

B, T, S = 4, 16, 32


def loop_step(model, opt, stage):
    "One step as mlfo.pretrain runs it, value checks off."
    def step(views):
        with input_checks(False): out = model(views, stage=stage)
        opt.zero_grad(set_to_none=True)
        out['loss'].backward()
        model.before_optimizer_step()
        opt.step()
        model.on_step_end()
        return out
    return step


@pytest.mark.parametrize('overrides', [(), ('temporal=conventional', 'constraint=instance'),
                                       ('instance_similarity=paper', 'constraint=semantic', 'temporal_augs=reverse,shuffle')])
@pytest.mark.parametrize('epoch,stage', [(0, 1), (3, 2)])   # frozen prototypes, no queue / queue on, every level
def test_training_step_makes_no_host_sync(overrides, epoch, stage):
    torch.manual_seed(0)
    cfg = get_preset('tiny', 'model.width=8', 'K=16', 'queue_start_epoch=2', *overrides)
    model = MLFO(cfg).train()
    model.set_epoch(epoch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step, views = loop_step(model, opt, stage), random_views(B, T, S, 'cpu')
    for i in range(2):   # the first step creates Adam's state, the second is a steady one
        syncs = count_host_syncs(step, views)
        assert syncs.events == [], (i, syncs.by_place())
        assert torch.isfinite(syncs.result['loss'])
    pushed = epoch >= cfg.loss.queue_start_epoch or cfg.loss.queue_push == 'always'   # the authors push from the first step
    assert model.queue.n_filled == (2 * B if pushed else 0)


def test_benchmark_step_counts():
    "The benchmark's step: zero reads with the checks off; with them on, only the value checks read."
    cfg, views = get_preset('tiny'), random_views(B, T, S, 'cpu')
    step, _ = make_step(cfg, 'mlfo', torch.device('cpu'), checks=False)
    assert len(count_host_syncs(step, views)) == 0 and len(count_host_syncs(step, views)) == 0
    step, _ = make_step(cfg, 'mlfo', torch.device('cpu'))          # CPU default: the checks stay on
    checked = count_host_syncs(step, views)
    assert len(checked) == 50 and {what for what, _ in checked.events} == {'__bool__'}, checked.by_place()
    assert checks_enabled()


def test_counter_sees_a_planted_read():
    "A single read added anywhere in the model is found and placed."
    cfg = get_preset('tiny', 'model.width=8', 'K=16')
    model = MLFO(cfg).train()
    head = model.ins_head.forward
    def reading_head(f, *steps):
        z = head(f, *steps)
        if z.sum() > 0: pass            # a host read in the middle of the forward
        return z
    model.ins_head.forward = reading_head
    with input_checks(False): syncs = count_host_syncs(model, random_views(B, T, S, 'cpu'))
    assert [what for what, _ in syncs.events] == ['__bool__'], syncs.by_place()   # one call for both views
    assert all(where.endswith('reading_head') for _, where in syncs.events)


def test_bad_input_still_raises_with_checks_on():
    cfg = get_preset('tiny', 'model.width=8', 'K=16')
    model = MLFO(cfg).train()
    views = random_views(B, T, S, 'cpu')
    views['a'][0, 0, 0, 0, 0] = float('nan')
    with pytest.raises(MLFOError, match='non-finite'): model(views)
    with input_checks(False): out = model(views)   # off: the NaN reaches the loss (the loop's device-side check reports it)
    assert not torch.isfinite(out['loss'])


def test_queue_count_survives_a_checkpoint():
    cfg = get_preset('tiny', 'model.width=8', 'K=16', 'queue_start_epoch=0')
    model = MLFO(cfg).train()
    with torch.no_grad(): model(random_views(B, T, S, 'cpu'))
    restored = MLFO(cfg)
    restored.load_state_dict(model.state_dict())
    assert restored.queue.n_filled == model.queue.n_filled == B
    torch.testing.assert_close(restored.queue.rows(0), model.queue.rows(0))
