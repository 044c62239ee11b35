"""Two gloo processes against one: L_ins, InfoNCE, Sinkhorn targets with the queue, the graphs and L_mul.

Each process holds half of a global batch. Its losses must be the full-batch losses restricted to
its anchors (so the mean over processes is the single-process value), its graphs and targets the
single-process ones, and the gradient it receives for its slice (through all_gather_grad, from
both processes' losses) twice the single-process gradient of the full-batch mean, which DDP's
averaging halves. The workers live at module level so that the spawned processes can import them.
"""
import torch
import torch.nn.functional as F

import mlfo.distributed as D
from mlfo.graph import graph_targets, multilevel_loss
from mlfo.instance import info_nce, instance_loss
from mlfo.prototypes import LogitQueue, semantic_targets

WORLD, B, C, K = 2, 4, 8, 6
TAU, ETA = 0.2, 0.05


def make_batch(seed=0):
    "A global batch: high-level projections, a lower level's projections and prototype logits, two views."
    g = torch.Generator().manual_seed(seed)
    N = WORLD * B
    z1, z2 = torch.randn(N, C, generator=g), torch.randn(N, C, generator=g)
    r1, r2 = torch.randn(N, 5, generator=g), torch.randn(N, 5, generator=g)
    protos = F.normalize(torch.randn(K, C, generator=g), dim=1)
    steps = [(F.normalize(torch.randn(N, C, generator=g), dim=1) @ protos.T,
              F.normalize(torch.randn(N, C, generator=g), dim=1) @ protos.T) for _ in range(3)]
    return dict(z1=z1, z2=z2, r1=r1, r2=r2, steps=steps)


def losses(batch, rank, world):
    "Everything the test compares, computed on this process's slice (the identity collectives with one process)."
    part = lambda t: D.rank_slice(t, rank, world).clone()
    out = {}
    z1, z2 = part(batch['z1']).requires_grad_(True), part(batch['z2']).requires_grad_(True)
    loss, acc = instance_loss(z1, z2, TAU)
    loss.backward()
    out['ins'] = (loss.detach(), acc, z1.grad, z2.grad)

    q, k = part(batch['z1']).requires_grad_(True), part(batch['z2']).requires_grad_(True)
    loss, acc = info_nce(q, k, TAU)
    loss.backward()
    out['nce'] = (loss.detach(), acc, q.grad, k.grad)

    queue = LogitQueue(length=8, K=K)
    for l1, l2 in batch['steps']:                      # the queue fills, then is used
        s1, s2 = semantic_targets(part(l1), part(l2), queue, use_queue=True)
    out['sem'] = (s1, s2, queue.rows(0).clone(), queue.rows(1).clone())

    s1_all, s2_all = D.all_gather(s1), D.all_gather(s2)
    h1, h2 = D.all_gather(part(batch['z1'])), D.all_gather(part(batch['z2']))
    for variant in MUL_VARIANTS:
        E = graph_targets('combined', h1, h2, s1_all, s2_all, TAU, ETA, 'paper' if variant == 'paper' else 'code')  # (N, N) everywhere
        r1, r2 = part(batch['r1']).requires_grad_(True), part(batch['r2']).requires_grad_(True)
        loss, acc = multilevel_loss(r1, r2, D.rank_slice(E, rank, world), TAU, variant=variant)
        loss.backward()
        out[f'mul_{variant}'] = (E, loss.detach(), acc, r1.grad, r2.grad)
    return out


MUL_VARIANTS = ('symmetric', 'paper', 'authors')  # multilevel_loss variants, each with its instance graph


def dist_worker(rank, world, batch):
    return losses(batch, rank, world)


def test_two_processes_match_one():
    batch = make_batch()
    one = losses(batch, 0, 1)
    ranks = D.spawn(dist_worker, WORLD, batch)
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    both = lambda key, i: torch.stack([r[key][i] for r in ranks])
    for key in ('ins', 'nce'):
        close(both(key, 0).mean(), one[key][0])                       # loss
        close(both(key, 1).mean(), one[key][1])                       # accuracy
        for i in (2, 3):                                              # gradients of the local slices
            close(torch.cat([r[key][i] for r in ranks]), WORLD * one[key][i])
    for i in (0, 1):                                                  # Sinkhorn targets of each view
        close(torch.cat([r['sem'][i] for r in ranks]), one['sem'][i])
    for r in ranks:                                                   # the same queue everywhere
        close(r['sem'][2], one['sem'][2]); close(r['sem'][3], one['sem'][3])
    for variant in MUL_VARIANTS:
        key = f'mul_{variant}'
        for r in ranks: close(r[key][0], one[key][0])                 # the global graph
        close(both(key, 1).mean(), one[key][1])
        close(both(key, 2).mean(), one[key][2])
        for i in (3, 4):
            close(torch.cat([r[key][i] for r in ranks]), WORLD * one[key][i])
