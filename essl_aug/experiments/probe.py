"""Linear evaluation of a frozen backbone: logistic regression on standardised pooled features."""

from __future__ import annotations

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
    """Test accuracy of a multinomial logistic regression trained on the frozen backbone's train features.

    Features are standardised with the training split's statistics; the classifier is fitted full-batch with
    L-BFGS (deterministic), with an L2 penalty ``weight_decay``.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 4))
        >>> x, y = torch.randn(40, 1, 2, 2), torch.arange(40) % 2
        >>> x[y == 1] += 3
        >>> linear_probe(net, x, y, x, y) > 0.9
        True
    """
    f_train = extract_features(backbone, train_x)
    f_test = extract_features(backbone, test_x)
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
