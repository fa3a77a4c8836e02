"""The reference photonics networks (essl_reference.md section 4), with a width multiplier for small CPUs.

The SimCLR projector of the reference (in -> 512 (BN, ReLU) -> 512 (BN, ReLU) -> 256) is the toolkit's
``projector(f, 512, 256, depth=3, hidden_bias=True)``; the reference reuses one BatchNorm module for both hidden
layers, there each layer has its own.
"""

from __future__ import annotations

from torch import Tensor, nn

#: Reference widths: conv channels (64, 256, 256), then FC 256 -> 1024 -> 1024 (the representation).
REFERENCE_CHANNELS = (64, 256, 256)
REPRESENTATION = 1024


class Encoder(nn.Module):
    """Conv(1->c1, k7) BN ReLU MaxPool2 -> Conv(c1->c2, k7) BN ReLU MaxPool4 -> Conv(c2->c3, k7) BN ReLU MaxPool4
    -> flatten -> FC c3->1024 ReLU -> FC 1024->1024 (zero padding 3, as the reference). Input (B, 1, 32, 32).

    Args:
        width: multiplier of the reference conv channels (1.0: 64, 256, 256).
    """

    def __init__(self, width: float = 1.0, out_features: int = REPRESENTATION) -> None:
        super().__init__()
        c1, c2, c3 = (max(4, round(c * width)) for c in REFERENCE_CHANNELS)
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 7, padding=3),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 7, padding=3),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.MaxPool2d(4),
            nn.Conv2d(c2, c3, 7, padding=3),
            nn.BatchNorm2d(c3),
            nn.ReLU(),
            nn.MaxPool2d(4),
            nn.Flatten(),
        )
        self.fc = nn.Sequential(nn.Linear(c3, out_features), nn.ReLU(), nn.Linear(out_features, out_features))
        self.out_features = out_features

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


class DOSPredictor(nn.Module):
    """Encoder + MLP 1024 -> 1024 -> 1024 -> 512 -> 400 (ReLU), predicting DOS minus the empty-lattice DOS."""

    def __init__(self, encoder: Encoder, num_dos: int = 400) -> None:
        super().__init__()
        self.encoder = encoder
        d = encoder.out_features
        self.head = nn.Sequential(
            nn.Linear(d, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 512), nn.ReLU(),
            nn.Linear(512, num_dos),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))
