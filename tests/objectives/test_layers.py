"""Reading an intermediate feature map by module name (essl_aug.layers): CNN maps, ViT token maps, errors."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import Tensor, nn

from benchmarks.toolkit.models import SmallCNN
from benchmarks.toolkit.resnet import CifarResNet18
from essl_aug.layers import LayerFeatures, capture, feature_map, find_layer, spatial_map


class TinyViT(nn.Module):
    """Patch embedding (4 px patches), a [CLS] token, two blocks of (B, N, D) tokens, a final norm; [CLS] out."""

    def __init__(self, dim: int = 6) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, 4, stride=4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.blocks = nn.ModuleList([nn.Linear(dim, dim), nn.Linear(dim, dim)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, h*w, D), row-major
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        for block in self.blocks:
            tokens = tokens + block(tokens)
        return self.norm(tokens)[:, 0]


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


def test_the_map_of_a_resnet_stage_by_name() -> None:
    torch.manual_seed(0)
    net = CifarResNet18(width=4).eval()
    x = torch.rand(2, 3, 32, 32)
    got = feature_map(net, "layers.3", x)
    with torch.no_grad():
        want = net.layers[:4](net.stem(x))
    assert got.shape == (2, 8, 16, 16)
    assert torch.equal(got.detach(), want)
    assert _no_hooks(net)


def test_a_vit_token_map_drops_the_class_token_and_lays_patches_row_major() -> None:
    torch.manual_seed(0)
    net = TinyViT()
    x = torch.rand(2, 3, 8, 16)  # a 2 x 4 grid of patches: not square, so the grid is given
    got = feature_map(net, "blocks.0", x, class_tokens=1, grid=(2, 4))
    tokens = torch.cat([net.cls_token.expand(2, -1, -1), net.patch_embed(x).flatten(2).transpose(1, 2)], dim=1)
    after = net.blocks[0](tokens)  # the Linear's own output: what the hook on blocks.0 sees
    want = after[:, 1:].transpose(1, 2).reshape(2, 6, 2, 4)
    assert torch.equal(got, want)
    assert torch.equal(got[:, :, 1, 2], after[:, 1 + 1 * 4 + 2])  # row 1, column 2 is patch 6
    with pytest.raises(ValueError, match=r"not a square grid: give `grid=\(h, w\)`"):
        feature_map(net, "blocks.0", x, class_tokens=1)
    with pytest.raises(ValueError, match=r"not grid \(3, 3\)"):
        feature_map(net, "blocks.0", x, class_tokens=1, grid=(3, 3))
    assert _no_hooks(net)


def test_an_unknown_layer_lists_close_names() -> None:
    net = CifarResNet18(width=4)
    with pytest.raises(
        ValueError, match=r"`layer` 'layer.3' is not a module of CifarResNet18; close names: 'layers.3'"
    ):
        find_layer(net, "layer.3")
    with pytest.raises(TypeError, match=r"non-empty name"):
        find_layer(net, "")


def test_a_layer_that_is_not_spatial_is_refused() -> None:
    net = SmallCNN(1, width=4)
    with pytest.raises(ValueError, match=r"gives shape \(2, 16\), not a spatial map"):
        feature_map(net, "features.13", torch.rand(2, 1, 8, 8))  # after the Flatten
    with pytest.raises(ValueError, match=r"`class_tokens` and `grid` are for tokens"):
        feature_map(net, "features.5", torch.rand(2, 1, 8, 8), class_tokens=1)

    class Pair(nn.Module):
        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            return x, x

    with pytest.raises(TypeError, match=r"returns a tuple; hook a module that returns one tensor"):
        feature_map(nn.Sequential(Pair()), "0", torch.rand(2, 1, 4, 4))
    assert _no_hooks(net)


def test_a_backbone_that_is_no_module_and_a_layer_that_never_runs() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())
    with pytest.raises(TypeError, match=r"not an nn.Module; pass the backbone module itself"):
        feature_map(lambda x: net(x), "0", torch.rand(2, 1, 4, 4))

    class Skips(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.unused = nn.Conv2d(1, 2, 1), nn.Conv2d(2, 2, 1)

        def forward(self, x: Tensor) -> Tensor:
            return self.used(x)

        def features(self, x: Tensor) -> Tensor:
            return self.used(x)

    model = Skips()
    with pytest.raises(RuntimeError, match=r"did not run"):
        feature_map(model, "unused", torch.rand(2, 1, 4, 4))
    assert feature_map(model.features, "used", torch.rand(2, 1, 4, 4)).shape == (2, 2, 4, 4)  # a bound method
    assert _no_hooks(model)


def test_capture_records_every_forward_and_refuses_a_map_modified_in_place() -> None:
    torch.manual_seed(0)
    net = SmallCNN(1, width=4)
    x1, x2 = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    with capture(net, "features.5") as maps:
        net(x1), net(x2)
    assert len(maps) == 2 and torch.equal(maps[1], feature_map(net, "features.5", x2))
    # a BatchNorm whose output the next ReLU(inplace=True) overwrites
    with pytest.raises(RuntimeError, match=r"modified in place after the layer"), capture(net, "features.4"):
        net(x1)
    assert _no_hooks(net)


def test_layer_features_pool_the_map_and_stop_the_forward_there() -> None:
    torch.manual_seed(0)
    calls: list[int] = []
    tail = nn.Conv2d(4, 4, 1)
    tail.register_forward_pre_hook(lambda module, args: calls.append(1))
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), tail)
    wrapped = LayerFeatures(net, "1")
    x = torch.rand(3, 1, 5, 5)
    assert torch.equal(wrapped(x), torch.relu(net[0](x)).mean(dim=(2, 3)))
    assert calls == []  # the layers after "1" did not run
    net(x)
    assert calls == [1]
    plain = LayerFeatures(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1)), "1")
    plain(x)  # no hook stays behind: the wrapper pickles and deep-copies after a call
    twin = pickle.loads(pickle.dumps(copy.deepcopy(plain)))
    assert torch.equal(twin(x), plain(x))


def test_spatial_map_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match=r"`class_tokens` must be an integer >= 0"):
        spatial_map(torch.rand(1, 5, 2), class_tokens=-1)
    with pytest.raises(ValueError, match=r"`grid` must be None or \(h, w\)"):
        spatial_map(torch.rand(1, 4, 2), grid=(2,))
