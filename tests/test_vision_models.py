"""The CIFAR model zoo: registry, shapes, gradients, parameter counts, features, bf16/compile."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bcpd_sim.errors import ConfigError
from bcpd_sim.vision.models import (
    CifarModel,
    Features,
    count_parameters,
    create_model,
    list_models,
    register_model,
)
from bcpd_sim.vision.models import registry as registry_module

# Parameter counts for 100 classes, as the published layer specs give them (RepDistiller's
# models/resnet.py and models/wrn.py, the CRD benchmark's CIFAR-100 models).
PUBLISHED_COUNTS = {
    "resnet20": 278_324,
    "resnet32": 472_756,
    "resnet56": 861_620,
    "resnet110": 1_736_564,
    "resnet8x4": 1_233_540,
    "resnet32x4": 7_433_860,
    "wrn_16_2": 703_284,
    "wrn_40_1": 569_780,
    "wrn_40_2": 2_255_156,
}
# Pinned counts of every model (100 classes), as built by this zoo.
PINNED_COUNTS = {
    **PUBLISHED_COUNTS,
    "resnet8": 83_892,
    "resnet14": 181_108,
    "resnet44": 667_188,
    "wrn_16_1": 180_916,
    "vgg8": 3_965_028,
    "vgg13": 9_462_180,
    "mobilenetv2": 812_836,
    "shufflenetv1": 949_258,
    # RepDistiller/mdistiller layouts (the foreign_checkpoints reference README's counts)
    "resnet50": 23_705_252,
    "shufflenetv2": 1_355_528,
    "vgg11": 9_277_284,
    "vgg16": 14_774_436,
    "vgg19": 20_086_692,
}
ALL_MODELS = list_models()
# CIFAR ResNet-50 (23.7M parameters) takes seconds per pass on a CPU: slow-marked where all run
HEAVY = {"resnet50"}
MODEL_PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in ALL_MODELS]
NUM_CLASSES = 7  # not the default, so the classifier width is really set


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_registry_holds_the_benchmark_zoo():
    assert set(ALL_MODELS) == set(PINNED_COUNTS)
    assert ALL_MODELS == sorted(ALL_MODELS)
    assert list_models("wrn_40_*") == ["wrn_40_1", "wrn_40_2"]
    assert list_models("nothing*") == []


@pytest.mark.parametrize("name", ALL_MODELS)
def test_parameter_count(name):
    model = create_model(name, num_classes=100)
    n = count_parameters(model)
    assert n == PINNED_COUNTS[name]
    if name in PUBLISHED_COUNTS:
        assert abs(n - PUBLISHED_COUNTS[name]) <= 0.005 * PUBLISHED_COUNTS[name]
    # the classifier is the only part that depends on the number of classes
    assert n - count_parameters(create_model(name, num_classes=10)) == 90 * (
        model.embedding_dim + 1
    )


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_forward_and_backward(name, batch):
    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES)
    assert isinstance(model, CifarModel)
    model.train()
    logits = model(batch)
    assert logits.shape == (2, NUM_CLASSES)
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}.{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite gradient"


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_features_agree_with_declared_shapes(name, batch):
    model = create_model(name, num_classes=NUM_CLASSES).eval()
    with torch.no_grad():
        logits, feats = model(batch, return_features=True)
        plain = model(batch)
    assert isinstance(feats, Features)
    torch.testing.assert_close(logits, plain)
    torch.testing.assert_close(model.get_classifier()(feats.embedding), logits)
    assert feats.stem.shape[:2] == (2, model.stem_channels)
    assert len(feats.blocks) == len(feats.preact_blocks) == len(model.feature_channels)
    assert len(model.feature_strides) == len(model.feature_channels)
    for f, p, c, s in zip(
        feats.blocks, feats.preact_blocks, model.feature_channels, model.feature_strides
    ):
        assert f.shape == p.shape == (2, c, 32 // s, 32 // s)
    assert feats.embedding.shape == (2, model.embedding_dim)
    assert len(feats.as_list()) == len(model.feature_channels) + 2
    assert feats.as_list(preact=True)[1] is feats.preact_blocks[0]


@pytest.mark.parametrize("name", ["resnet8", "resnet8x4", "vgg8", "shufflenetv1", "shufflenetv2"])
def test_blocks_are_relu_of_preact_blocks(name, batch):
    model = create_model(name).eval()
    with torch.no_grad():
        _, feats = model(batch, return_features=True)
    for f, p in zip(feats.blocks, feats.preact_blocks):
        torch.testing.assert_close(f, F.relu(p))
        assert (p < 0).any()  # really the pre-activation


def test_wrn_preact_is_the_next_batch_norm(batch):
    model = create_model("wrn_16_1").eval()
    with torch.no_grad():
        _, feats = model(batch, return_features=True)
        f1, f2, f3 = feats.blocks
        torch.testing.assert_close(feats.preact_blocks[0], model.block2[0].bn1(f1))
        torch.testing.assert_close(feats.preact_blocks[1], model.block3[0].bn1(f2))
        torch.testing.assert_close(feats.preact_blocks[2], model.bn(f3))
        # handing the precomputed BN to a stage changes nothing
        torch.testing.assert_close(model.block2(f1), f2)
        # the embedding is the pooled activation of the last pre-activation
        torch.testing.assert_close(feats.embedding, F.relu(model.bn(f3)).mean((2, 3)))


def test_mobilenetv2_is_the_crd_half_width_variant():
    model = create_model("mobilenetv2")
    assert model.feature_channels == (12, 16, 48, 160)
    assert model.stem_channels == 16 and model.embedding_dim == 1280
    wide = create_model("mobilenetv2", width_mult=1.0)
    assert wide.feature_channels == (24, 32, 96, 320)


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_channels_last_and_bf16_autocast(name, batch):
    model = create_model(name, num_classes=NUM_CLASSES).eval()
    model = model.to(memory_format=torch.channels_last)
    x = batch.to(memory_format=torch.channels_last)
    with torch.no_grad():
        reference = model(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, feats = model(x, return_features=True)
    assert logits.shape == (2, NUM_CLASSES)
    assert logits.dtype == torch.bfloat16
    assert torch.isfinite(logits.float()).all()
    assert feats.blocks[-1].is_contiguous(memory_format=torch.channels_last)
    # bf16 keeps about 3 significant digits; the logits stay close to the fp32 ones
    scale = reference.abs().max()
    assert (logits.float() - reference).abs().max() <= 0.1 * scale


@pytest.mark.parametrize(
    "name", ["resnet8", "wrn_16_1", "vgg8", "mobilenetv2", "shufflenetv1", "shufflenetv2"]
)
def test_torch_compile_captures_one_graph(name, batch):
    """fullgraph=True fails on any graph break (data-dependent control flow, untraceable ops)."""
    torch._dynamo.reset()
    model = create_model(name, num_classes=NUM_CLASSES).eval()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with torch.no_grad():
        logits, feats = compiled(batch, return_features=True)
        eager_logits, eager_feats = model(batch, return_features=True)
    torch.testing.assert_close(logits, eager_logits)
    torch.testing.assert_close(feats.embedding, eager_feats.embedding)
    torch._dynamo.reset()


def test_seeded_construction_is_reproducible(batch):
    torch.manual_seed(123)
    a = create_model("resnet8")
    torch.manual_seed(123)
    b = create_model("resnet8")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_create_model_errors():
    with pytest.raises(ConfigError, match="unknown model 'resnet9'.*resnet20.*wrn_40_2"):
        create_model("resnet9")
    for bad in (1, 0, -3, 2.5, True, "100"):
        with pytest.raises(ConfigError, match="num_classes"):
            create_model("resnet8", num_classes=bad)
    with pytest.raises(ConfigError, match="resnet8"):
        create_model("resnet8", width_mult=2.0)
    with pytest.raises(ConfigError):
        create_model(None)  # type: ignore[arg-type]
    assert isinstance(ConfigError("x"), ValueError)


def test_reference_aliases_and_kwargs():
    assert create_model("mobile_half", num_classes=5).num_classes == 5
    assert type(create_model("ShuffleV1")).__name__ == "CifarShuffleNetV1"
    assert "mobile_half" not in list_models()
    model = create_model("wrn_16_1", drop_rate=0.3)
    assert model.block1[0].drop_rate == 0.3


def test_register_model_and_count_parameters():
    @register_model(name="_test_tiny")
    def tiny(num_classes: int = 100) -> CifarModel:
        return create_model("resnet8", num_classes=num_classes)

    try:
        assert "_test_tiny" in list_models()
        model = create_model("_test_tiny", num_classes=3)
        assert model.fc.out_features == 3
        with pytest.raises(ValueError, match="already registered"):
            register_model(tiny, name="_test_tiny")
        total = count_parameters(model)
        model.fc.requires_grad_(False)
        assert count_parameters(model, trainable_only=True) == total - (64 * 3 + 3)
    finally:
        registry_module._REGISTRY.pop("_test_tiny", None)
        registry_module._SETTINGS.pop("_test_tiny", None)


# Independent of the registry: RepDistiller's train_teacher.py / train_student.py set lr 0.01 for
# MobileNetV2 and ShuffleNet V1/V2; mdistiller's configs/cifar100/dkd/*.yaml set DKD's beta to 2
# for resnet56 / resnet110 teachers, 6 for wrn_40_2 / vgg13, 8 otherwise.
LOW_LR = {"mobilenetv2", "shufflenetv1", "shufflenetv2"}
DKD_BETA = {"resnet56": 2.0, "resnet110": 2.0, "wrn_40_2": 6.0, "vgg13": 6.0}
FAMILY_PREFIXES = ("resnet", "wrn", "vgg", "mobilenetv2", "shufflenetv1")


@pytest.mark.parametrize("name", ALL_MODELS)
def test_model_carries_its_architecture_settings(name):
    from bcpd_sim.vision.distill.dkd import default_beta
    from bcpd_sim.vision.models import ArchConfig, arch_config, settings_of
    from bcpd_sim.vision.recipes import get_recipe

    model = create_model(name, num_classes=NUM_CLASSES)
    cfg = model.arch_cfg
    assert isinstance(cfg, ArchConfig) and cfg.name == name
    assert cfg.num_classes == NUM_CLASSES and cfg.kwargs == {}
    family = next((p for p in FAMILY_PREFIXES if name.startswith(p)), None)
    assert cfg.family == (family or cfg.family) and cfg.family
    assert cfg.lr_family == ("low" if name in LOW_LR else "standard")
    assert cfg.dkd_beta == DKD_BETA.get(name, 8.0)
    assert arch_config(name) == ArchConfig(name, cfg.family, cfg.lr_family, cfg.dkd_beta)
    # Readers take the settings from the model (also through torch.compile's wrapper) or a name.
    std = get_recipe("standard")
    want_lr = 0.01 if name in LOW_LR else 0.05
    assert std.lr_for(model) == std.lr_for(name) == want_lr
    assert settings_of(torch.compile(model)) is cfg
    assert default_beta(model) == default_beta(name) == DKD_BETA.get(name, 8.0)
    assert create_distiller_beta(model) == DKD_BETA.get(name, 8.0)


def create_distiller_beta(teacher) -> float:
    from bcpd_sim.vision.distill import create_distiller

    return create_distiller("dkd", teacher, None).hparams["beta"]


def test_aliases_and_unknown_names_have_settings_or_defaults():
    from bcpd_sim.vision.models import settings_of
    from bcpd_sim.vision.recipes import get_recipe

    assert create_model("ShuffleV1").arch_cfg.lr_family == "low"
    assert settings_of("mobile_half").name == "mobilenetv2"
    assert settings_of("not_a_model") is None and settings_of(torch.nn.Linear(2, 2)) is None
    assert get_recipe("standard").lr_for("not_a_model") == 0.05
    assert create_model("wrn_16_1", drop_rate=0.3).arch_cfg.kwargs == {"drop_rate": 0.3}
