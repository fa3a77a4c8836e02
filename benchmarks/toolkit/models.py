"""The small CNN backbone of the digits experiments and the SimCLR projector of every recipe."""

from __future__ import annotations

from torch import Tensor, nn


def _block(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    """Four 3x3 conv-BN-ReLU blocks (two of stride 2) and global average pooling: any input size works.

    Args:
        in_channels: image channels.
        width: channels of the first block; the features have ``4 * width`` dimensions.

    Shape:
        - Input: (B, in_channels, H, W).
        - Output: (B, 4 * width) pooled features.

    Example:
        >>> net = SmallCNN(3, width=8)
        >>> net(torch.rand(2, 3, 16, 16)).shape, net(torch.rand(2, 3, 8, 8)).shape
        (torch.Size([2, 32]), torch.Size([2, 32]))
    """

    def __init__(self, in_channels: int = 3, width: int = 32) -> None:
        super().__init__()
        w = int(width)
        self.features = nn.Sequential(
            *_block(in_channels, w, 1),
            *_block(w, 2 * w, 2),
            *_block(2 * w, 4 * w, 2),
            *_block(4 * w, 4 * w, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.out_features = 4 * w

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def projector(
    in_features: int,
    hidden: int = 256,
    out: int = 64,
    depth: int = 2,
    hidden_bias: bool = False,
    out_norm: bool = False,
) -> nn.Sequential:
    """The SimCLR projection MLP: ``depth - 1`` Linear-BN-ReLU layers of width ``hidden``, then a Linear to ``out``.

    Args:
        in_features: width of the backbone features.
        hidden: width of the hidden layers.
        out: width of the projection.
        depth: number of Linear layers (at least 1).
        hidden_bias: give the hidden Linear layers a bias (they are followed by BatchNorm, which has its own).
        out_norm: end with ``BatchNorm1d(out, affine=False)`` (and no bias on the last Linear), as the reference
            E-SSL CIFAR-10 projector.

    The three recipes of this project: ``projector(f)`` (the digits CNN: Linear-BN-ReLU-Linear),
    ``projector(512, 2048, 2048, out_norm=True)`` (the CIFAR-10 reference) and
    ``projector(f, 512, 256, depth=3, hidden_bias=True)`` (the photonics reference).

    Example:
        >>> projector(32)(torch.rand(4, 32)).shape
        torch.Size([4, 64])
        >>> [type(m).__name__ for m in projector(8, 16, 4, out_norm=True)]
        ['Linear', 'BatchNorm1d', 'ReLU', 'Linear', 'BatchNorm1d']
    """
    if depth < 1:
        raise ValueError(f"`depth` must be at least 1 (the output Linear layer), got {depth}.")
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth - 1):
        layers += [nn.Linear(width, hidden, bias=hidden_bias), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        width = hidden
    layers.append(nn.Linear(width, out, bias=not out_norm))
    if out_norm:
        layers.append(nn.BatchNorm1d(out, affine=False))
    return nn.Sequential(*layers)
