"""ResNet-18 with the CIFAR stem (3x3 stride-1 first convolution, no max-pool), as in the reference E-SSL code."""

from __future__ import annotations

from torch import Tensor, nn


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection (1x1 conv-BN shortcut when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class CifarResNet18(nn.Module):
    """ResNet-18, CIFAR variant: 3x3 stride-1 stem, no max-pool, four stages of two basic blocks, global average
    pooling, no classifier. Output: ``8 * width`` features (512 with the default ``width=64``).

    torchvision-style initialisation (Kaiming-normal fan-out convolutions, BatchNorm weight 1 and bias 0, no
    zero-initialised residual branch), as the reference E-SSL CIFAR-10 code. ``width`` below 64 only serves quick
    checks.

    Example:
        >>> net = CifarResNet18(width=4)
        >>> net(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 32])
    """

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        w = int(width)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True))
        stages, cin = [], w
        for i, mult in enumerate((1, 2, 4, 8)):
            cout = w * mult
            stages += [BasicBlock(cin, cout, 1 if i == 0 else 2), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.layers(self.stem(x)))
