"""Layer decoupling (essl_aug.objectives.layered.AtLayer and the config key ``layer``): the objectives read the pooled
map of an intermediate layer, through the backbone (E-SSL's extra view) or the views' maps (features)."""

from __future__ import annotations

import copy

import pytest
import torch

from benchmarks.toolkit.models import SmallCNN, projector
from benchmarks.toolkit.pretrain import pretrain_loop
from benchmarks.toolkit.simclr import nt_xent
from essl_aug.config import ESSLConfig
from essl_aug.layers import LayerFeatures, capture
from essl_aug.objectives import ESSL, SER, AtLayer, AugSelf, ESSLOnViews, Objectives, StepInputs
from essl_aug.objectives.layered import maps_layer
from essl_aug.views import simclr


def test_essl_at_a_layer_is_essl_on_the_backbone_read_at_that_layer() -> None:
    torch.manual_seed(0)
    net = SmallCNN(3, width=4)
    inner = ESSL("rotation", in_features=8, hidden=(16,))
    twin = copy.deepcopy(inner)
    at = AtLayer(inner, "features.5")
    x = torch.rand(4, 3, 12, 12)
    got = at(StepInputs(backbone=net, extra=x, generator=torch.Generator().manual_seed(1)))
    want = twin(
        StepInputs(backbone=LayerFeatures(net, "features.5"), extra=x, generator=torch.Generator().manual_seed(1))
    )
    assert torch.equal(got.loss, want.loss) and at.requires == {"backbone", "extra"}
    with pytest.raises(ValueError, match=r"the backbone gives 16 features per view but the head takes 8"):
        twin(StepInputs(backbone=net, extra=x))  # the plain backbone's output is wider: the layer was read


def test_augself_at_a_layer_reads_the_pooled_maps_of_the_views() -> None:
    torch.manual_seed(2)
    net = SmallCNN(3, width=4)
    views, params = simclr(12)(torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8))
    with capture(net, "features.5") as maps:
        f1, f2 = net(views[0]), net(views[1])
    inner = AugSelf(8, groups=("crop", "color"), hidden=(16,))
    twin = copy.deepcopy(inner)
    at = AtLayer(inner, "features.5")
    assert at.requires == {"maps", "params"}
    got = at(StepInputs(features=(f1, f2), params=tuple(params), maps=(maps[0], maps[1])))
    pooled = (maps[0].mean(dim=(2, 3)), maps[1].mean(dim=(2, 3)))
    want = twin(StepInputs(features=pooled, params=tuple(params)))
    assert torch.equal(got.loss, want.loss)
    with pytest.raises(ValueError, match=r"AtLayer needs maps in its StepInputs"):
        at(StepInputs(features=(f1, f2), params=tuple(params)))


def test_maps_layer_names_the_one_layer_to_capture() -> None:
    a = AtLayer(ESSLOnViews("rotation", in_features=8), "features.5")
    b = AtLayer(ESSLOnViews("vflip", in_features=8), "features.2")
    e = AtLayer(ESSL("rotation", in_features=8), "features.2")  # reads the backbone: no maps
    assert maps_layer(Objectives({"a": a, "e": e})) == ("features.5", 0, None)
    assert maps_layer(Objectives({"e": e})) is None
    with pytest.raises(ValueError, match=r"several layers"):
        maps_layer([a, b])
    with pytest.raises(TypeError, match=r"already read at a layer"):
        AtLayer(a, "features.5")


def test_a_pretraining_run_captures_the_views_maps(one_thread: None) -> None:
    torch.manual_seed(3)
    net, proj = SmallCNN(1, width=8), projector(32)
    objectives = Objectives({"essl": AtLayer(ESSLOnViews("rotation", in_features=16, hidden=(16,)), "features.5")})
    opt = torch.optim.SGD([*net.parameters(), *proj.parameters(), *objectives.parameters()], lr=0.05)
    history = pretrain_loop(
        net,
        proj,
        torch.rand(16, 1, 28, 28),
        views=lambda x, g: (x, x.flip(-1)),
        ssl_loss=nt_xent,
        optimizer=opt,
        lr=lambda step: 0.05,
        epochs=1,
        batch_size=8,
        generator=torch.Generator().manual_seed(0),
        objectives=objectives,
    )
    assert {"essl/ce", "essl/acc", "ssl"} <= set(history[0]) and 0 < history[0]["essl/ce"] < 5
    assert all(not m._forward_hooks for m in net.modules())


def test_the_config_key_layer_wraps_the_objectives_but_not_ser() -> None:
    block = {
        "layer": {"name": "features.5", "channels": 8},
        "objectives": {
            "augself": {"groups": ["crop"]},
            "ser": {"layer": "features.2", "in_channels": 4, "stride": 1},
        },
    }
    config = ESSLConfig.from_mapping(block, has_params=True)
    built = config.build_objectives(in_features=16)
    assert built is not None
    essl, augself, ser = (built.objectives[k] for k in ("essl", "augself", "ser"))
    assert isinstance(essl, AtLayer) and essl.layer == "features.5" and isinstance(essl.objective, ESSL)
    assert isinstance(augself, AtLayer) and augself.objective.in_features == 8  # the layer's channels
    assert isinstance(ser, SER) and ser.layer == "features.2"
    assert ESSLConfig.from_mapping(config.as_mapping(), has_params=True) == config
    assert config.as_mapping()["layer"] == {"name": "features.5", "channels": 8, "class_tokens": 0, "grid": None}
    vit = ESSLConfig.from_mapping(
        {"layer": '{"name": "blocks.2", "channels": 384, "class_tokens": 1, "grid": [14, 14]}'}
    )
    assert vit.layer == {"name": "blocks.2", "channels": 384, "class_tokens": 1, "grid": (14, 14)}
    for bad, match in [
        ("features.5", r"essl\.layer: give the layer's channels too"),
        ({"name": "features.5"}, r"essl\.layer\.channels must be"),
        ({"name": "f", "channels": 8, "size": 3}, r"unknown key\(s\) \['size'\]"),
        ({"name": "f", "channels": 8, "grid": [0, 2]}, r"essl\.layer: `grid` must be None or \(h, w\)"),
    ]:
        with pytest.raises(ValueError, match=match):
            ESSLConfig.from_mapping({"layer": bad})


def test_ser_is_registered_by_name() -> None:
    config = ESSLConfig.from_mapping({"lambda": 0, "objectives": {"ser": {"layer": "features.5", "in_channels": 8}}})
    built = config.build_objectives(in_features=16)
    assert built is not None and isinstance(built.objectives["ser"], SER)
    with pytest.raises(ValueError, match=r"essl\.objectives\.ser: unknown option\(s\) \['size'\]"):
        ESSLConfig.from_mapping({"objectives": {"ser": {"layer": "features.5", "in_channels": 8, "size": 3}}})
