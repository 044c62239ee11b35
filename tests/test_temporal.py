"""L_aug (Eq. 11-12) across two gloo processes equals the one-process loss over the whole batch."""
import torch

from mlfo.distributed import rank_slice, spawn
from mlfo.temporal import aug_loss, instance_loss_with_extra_negatives


def _aug_worker(rank, world_size, q1, q2, negs):
    "Each process holds its slice; returns its loss and the gradients of its slice."
    x1, x2, n = (rank_slice(t, rank, world_size).clone().requires_grad_(True) for t in (q1, q2, negs))
    loss, acc = aug_loss(x1, x2, n, 0.07)  # default gather: all_gather_grad
    extra, _ = instance_loss_with_extra_negatives(x1.detach(), x2.detach(), n.detach(), 0.07)
    loss.backward()
    return loss.detach(), acc, extra, x1.grad, x2.grad, n.grad


def test_aug_loss_two_processes():
    torch.manual_seed(0)
    q1, q2, negs = torch.randn(6, 8), torch.randn(6, 8), torch.randn(6, 2, 8)
    results = spawn(_aug_worker, 2, q1, q2, negs)
    leaves = [t.clone().requires_grad_(True) for t in (q1, q2, negs)]
    whole, _ = aug_loss(*leaves, 0.07, gather=lambda x: x)
    whole.backward()
    # equal local batches: the mean of the per-process losses is the loss of the whole batch
    torch.testing.assert_close(torch.stack([r[0] for r in results]).mean(), whole.detach())
    torch.testing.assert_close(torch.stack([r[2] for r in results]).mean(), whole.detach())
    # all_gather_grad sums the gradient over processes; DDP then averages over the 2 processes
    for k, leaf in zip((3, 4, 5), leaves, strict=True):
        grad = torch.cat([r[k] for r in results]) / 2
        torch.testing.assert_close(grad, leaf.grad, rtol=1e-4, atol=1e-6)
