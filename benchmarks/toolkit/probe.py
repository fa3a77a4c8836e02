"""Evaluation of a frozen backbone: logistic regression on standardised pooled features (:func:`linear_probe`,
the digits experiments), the weighted k-nearest-neighbour vote (:func:`knn_accuracy`), or a linear layer trained by
SGD on augmented views (:func:`sgd_linear_probe`, the reference E-SSL CIFAR-10 protocol)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@torch.no_grad()
def extract_features(backbone: nn.Module, images: Tensor, batch_size: int = 512) -> Tensor:
    """Pooled features of ``images`` with the backbone in eval mode (its mode is restored afterwards)."""
    was_training = backbone.training
    backbone.eval()
    device = next(iter(backbone.parameters()), images).device
    feats = [backbone(images[i : i + batch_size].to(device)).float() for i in range(0, len(images), batch_size)]
    backbone.train(was_training)
    return torch.cat(feats)


def linear_probe(
    backbone: nn.Module,
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    weight_decay: float = 1e-3,
    iterations: int = 100,
) -> float:
    """Test accuracy of a multinomial logistic regression trained on the frozen backbone's train features
    (:func:`linear_accuracy` on :func:`extract_features`).

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 4))
        >>> x, y = torch.randn(40, 1, 2, 2), torch.arange(40) % 2
        >>> x[y == 1] += 3
        >>> linear_probe(net, x, y, x, y) > 0.9
        True
    """
    f_train, f_test = extract_features(backbone, train_x), extract_features(backbone, test_x)
    return linear_accuracy(f_train, train_y, f_test, test_y, weight_decay, iterations)


def linear_accuracy(
    f_train: Tensor,
    train_y: Tensor,
    f_test: Tensor,
    test_y: Tensor,
    weight_decay: float = 1e-3,
    iterations: int = 100,
) -> float:
    """Test accuracy of a multinomial logistic regression fitted on features ``f_train`` (N, D).

    Features are standardised with the training split's statistics; the classifier is fitted full-batch with
    L-BFGS (deterministic), with an L2 penalty ``weight_decay`` on its weights.

    Example:
        >>> f, y = torch.randn(40, 3), torch.arange(40) % 2
        >>> f[:, 0] += 4 * y
        >>> linear_accuracy(f, y, f, y) > 0.9
        True
    """
    mean, std = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    f_train, f_test = (f_train - mean) / std, (f_test - mean) / std
    y_train, y_test = train_y.to(f_train.device), test_y.to(f_test.device)
    classes = int(torch.cat([train_y, test_y]).max()) + 1
    clf = nn.Linear(f_train.shape[1], classes).to(f_train.device)
    with torch.enable_grad():
        opt = torch.optim.LBFGS(clf.parameters(), lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(clf(f_train), y_train) + weight_decay * clf.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
    with torch.no_grad():
        return (clf(f_test).argmax(1) == y_test).float().mean().item()


@torch.no_grad()
def knn_accuracy(
    f_train: Tensor,
    train_y: Tensor,
    f_test: Tensor,
    test_y: Tensor,
    k: int = 20,
    temperature: float = 0.07,
    batch_size: int = 1024,
) -> float:
    """Test accuracy of the weighted k-nearest-neighbour classifier on L2-normalised features.

    The protocol of Wu et al. (2018) that solo-learn's ``WeightedKNNClassifier`` and most SSL papers report: each
    test feature's ``k`` most cosine-similar training features vote for their class with weight
    ``exp(similarity / temperature)``; the class with the largest vote wins (ties: the lowest class index).

    Example:
        >>> f, y = torch.randn(60, 3), torch.arange(60) % 3
        >>> f[torch.arange(60), y] += 5
        >>> knn_accuracy(f, y, f, y, k=5) > 0.9
        True
    """
    if not 1 <= k <= len(f_train):
        raise ValueError(f"`k` must lie in 1..{len(f_train)} (the training features), got {k}")
    train = F.normalize(f_train.float(), dim=1)
    y_train = train_y.to(train.device)
    classes = int(torch.cat([train_y, test_y]).max()) + 1
    correct = torch.zeros((), device=train.device)
    for i in range(0, len(f_test), batch_size):
        sim = F.normalize(f_test[i : i + batch_size].float(), dim=1) @ train.T
        top, idx = sim.topk(k, dim=1)
        votes = torch.zeros(len(sim), classes, device=train.device)
        votes.scatter_add_(1, y_train[idx], (top / temperature).exp())
        correct += (votes.argmax(1) == test_y[i : i + batch_size].to(train.device)).sum()
    return float(correct) / len(f_test)


def sgd_linear_probe(
    backbone: nn.Module,
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    *,
    in_features: int,
    num_classes: int,
    train_view: Callable[[Tensor, torch.Generator], Tensor],
    test_view: Callable[[Tensor], Tensor],
    epochs: int = 100,
    lr: float = 30.0,
    batch_size: int = 256,
    momentum: float = 0.9,
    seed: int = 0,
    test_batch_size: int = 1024,
) -> float:
    """Test accuracy of a ``Linear(in_features, num_classes)`` trained by SGD on the frozen backbone's features.

    The reference E-SSL CIFAR-10 linear evaluation: every epoch visits the training images in a random order in
    batches of ``batch_size`` (the last one may be smaller); each batch goes through ``train_view(x, generator)``
    (the probe's augmentation, including any conversion and normalisation) and the backbone (eval mode, no
    gradient) into the classifier; SGD with ``momentum``, no weight decay, cosine learning rate from ``lr`` over
    ``epochs``. The test images go through ``test_view(x)``. ``seed`` seeds the classifier and the augmentation.

    Example:
        >>> x, y = torch.randn(64, 4), torch.arange(64) % 2
        >>> x[:, 0] += 4 * y
        >>> sgd_linear_probe(nn.Identity(), x, y, x, y, in_features=4, num_classes=2, train_view=lambda x, g: x,
        ...                  test_view=lambda x: x, epochs=5, lr=0.1, batch_size=16) > 0.9
        True
    """
    device = train_x.device
    gen = torch.Generator(device=device).manual_seed(seed)
    torch.manual_seed(seed)
    clf = nn.Linear(in_features, num_classes).to(device)
    opt = torch.optim.SGD(clf.parameters(), lr=lr, momentum=momentum, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    was_training = backbone.training
    backbone.eval()

    @torch.no_grad()
    def features(x: Tensor) -> Tensor:
        return backbone(x).float()

    n = train_x.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, device=device, generator=gen)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(clf(features(train_view(train_x[idx], gen))), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    correct = torch.zeros((), device=device)
    with torch.no_grad():
        for i in range(0, test_x.shape[0], test_batch_size):
            pred = clf(features(test_view(test_x[i : i + test_batch_size]))).argmax(1)
            correct += (pred == test_y[i : i + test_batch_size]).sum()
    backbone.train(was_training)
    return float(correct) / test_x.shape[0]
