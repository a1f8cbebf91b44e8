"""ImageNet models: parameter counts, torchvision / mdistiller state-dict names, features."""

from __future__ import annotations

import functools

import pytest
import torch

from bcpd_sim.errors import ConfigError
from bcpd_sim.imagenet.models import create_imagenet_model, list_imagenet_models

# torchvision model cards (resnet18/34/50 "num_params") and mdistiller's MobileNetV1 at 1,000 classes.
PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "mobilenetv1": 4_231_976,
}


@functools.cache
def model_1000(name):
    """Each 1,000-class model built once for the tests that only read it."""
    return create_imagenet_model(name)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_counts(name):
    model = model_1000(name)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]


def _bn(prefix, c):
    return {f"{prefix}.{k}": (c,) for k in ("weight", "bias", "running_mean", "running_var")} | {
        f"{prefix}.num_batches_tracked": ()
    }


def torchvision_resnet_layout(blocks, bottleneck, num_classes=1000):
    """torchvision's resnet state-dict names and shapes, written out from its layer rules."""
    out = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    cin = 64
    for li, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks)):
        for b in range(n):
            p = f"layer{li + 1}.{b}"
            cout = planes * (4 if bottleneck else 1)
            if bottleneck:
                convs = [(planes, cin, 1), (planes, planes, 3), (cout, planes, 1)]
            else:
                convs = [(planes, cin, 3), (planes, planes, 3)]
            for i, (co, ci, k) in enumerate(convs, start=1):
                out[f"{p}.conv{i}.weight"] = (co, ci, k, k)
                out.update(_bn(f"{p}.bn{i}", co))
            if b == 0 and (li > 0 or cin != cout):
                out[f"{p}.downsample.0.weight"] = (cout, cin, 1, 1)
                out.update(_bn(f"{p}.downsample.1", cout))
            cin = cout
    out["fc.weight"] = (num_classes, cin)
    out["fc.bias"] = (num_classes,)
    return out


@pytest.mark.parametrize(
    "name, blocks, bottleneck",
    [
        ("resnet18", (2, 2, 2, 2), False),
        ("resnet34", (3, 4, 6, 3), False),
        ("resnet50", (3, 4, 6, 3), True),
    ],
)
def test_resnet_state_dict_is_torchvision_layout(name, blocks, bottleneck):
    sd = model_1000(name).state_dict()
    expected = torchvision_resnet_layout(blocks, bottleneck)
    assert list(sd) == list(expected)  # names and order
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected


def test_resnet50_is_v1_5_stride_on_the_3x3():
    model = model_1000("resnet50")
    assert model.layer2[0].conv1.stride == (1, 1) and model.layer2[0].conv2.stride == (2, 2)


def test_mobilenetv1_state_dict_is_mdistiller_layout():
    model = model_1000("mobilenetv1")
    sd = model.state_dict()
    specs = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1)]
    specs += [(256, 512, 2)] + [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    expected = {"model.0.0.weight": (32, 3, 3, 3), **_bn("model.0.1", 32)}
    for i, (ci, co, _) in enumerate(specs, start=1):
        expected[f"model.{i}.0.weight"] = (ci, 1, 3, 3)
        expected.update(_bn(f"model.{i}.1", ci))
        expected[f"model.{i}.3.weight"] = (co, ci, 1, 1)
        expected.update(_bn(f"model.{i}.4", co))
    expected |= {"fc.weight": (1000, 1024), "fc.bias": (1000,)}
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    assert list(sd) == list(expected)
    strides = [model.model[i][0].stride[0] for i in range(1, 14)]
    assert strides == [s for _, _, s in specs]


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_forward_features_and_small_inputs(name):
    model = create_imagenet_model(name, num_classes=5).eval()
    with torch.no_grad():
        logits, feats = model(torch.randn(2, 3, 32, 32), return_features=True)
    assert logits.shape == (2, 5)
    assert [b.shape[1] for b in feats.blocks] == list(model.feature_channels)
    assert [32 // b.shape[-1] for b in feats.blocks] == list(model.feature_strides)
    for b, p in zip(feats.blocks, feats.preact_blocks):
        torch.testing.assert_close(b, p.relu())
    torch.testing.assert_close(model.fc(feats.embedding), logits)
    assert feats.embedding.shape == (2, model.embedding_dim)


def test_weights_round_trip_into_a_fresh_model():
    a, b = create_imagenet_model("resnet18", 7), create_imagenet_model("resnet18", 7)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(a.eval()(x), b.eval()(x))


def test_unknown_model():
    with pytest.raises(ConfigError, match="valid: mobilenetv1, resnet18"):
        create_imagenet_model("resnet19")
    assert list_imagenet_models() == ["mobilenetv1", "resnet18", "resnet34", "resnet50"]
