"""A small CNN backbone and the SimCLR projector for the CPU experiments."""

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


def projector(in_features: int, hidden: int = 256, out: int = 64) -> nn.Module:
    """The SimCLR projection MLP: Linear-BN-ReLU-Linear.

    Example:
        >>> projector(32)(torch.rand(4, 32)).shape
        torch.Size([4, 64])
    """
    return nn.Sequential(
        nn.Linear(in_features, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out),
    )
