"""CUDA-only checks (skipped on CPU; stage 0 of ``benchmarks/gpu_suite.sh`` runs them): a
graph-captured ensemble step equals the eager one, and a KD and an RKD epoch on CUDA (bf16)
match the same epoch on CPU (fp32) within bf16 tolerance, with the same data order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_cuda_graph_ensemble_equals_eager():
    from bcpd_sim.ensemble import train
    from bcpd_sim.mixtures import IsotropicGaussianMixture

    mix = IsotropicGaussianMixture.lattice(num_classes=5, dim=8, delta=1.0, noise_var=2.0, seed=0)
    tr, va, te = mix.sample(1400, seed=1).split(800, 300, 300)
    common = dict(
        members=4,
        loss="mse",
        x_val=va.x,
        y_val=va.y,
        epochs=3,
        width=[32, 32],
        lr=1e-2,
        device="cuda",
        show_progress=False,
    )
    graph = train(tr.x, tr.y, capture="cuda_graph", **common)
    eager = train(tr.x, tr.y, capture="eager", **common)
    assert graph.config["capture_used"] == "cuda_graph"
    assert eager.config["capture_used"] == "eager"
    np.testing.assert_allclose(
        graph.predict_proba(te.x), eager.predict_proba(te.x), rtol=1e-5, atol=1e-6
    )


def test_data_order_is_the_same_on_cuda_and_cpu():
    from bcpd_sim.vision.bundle import load_data
    from bcpd_sim.vision.pipeline import DeviceLoader

    ds = load_data("synthetic", num_classes=10, train_limit=200, test_limit=20, val_size=0).train
    for epoch in (0, 3):
        orders = []
        for device in ("cpu", "cuda"):
            loader = DeviceLoader(ds, 32, device, shuffle=True, seed=5)
            loader.set_epoch(epoch)
            orders.append(loader.order().cpu())
        assert torch.equal(*orders)


def _epoch(method: str, device: str, tmp_path):
    from bcpd_sim.vision.bundle import load_data
    from bcpd_sim.vision.distill import create_distiller
    from bcpd_sim.vision.distill.trainer import DistillTrainer, freeze
    from bcpd_sim.vision.models import create_model
    from bcpd_sim.vision.recipes import get_recipe

    data = load_data("synthetic", num_classes=10, train_limit=160, test_limit=64, val_size=32)
    recipe = get_recipe(
        "tiny", epochs=1, batch_size=32, val_size=32, bf16=True, channels_last=True, compile=False
    )
    torch.manual_seed(0)
    teacher = freeze(create_model("resnet8x4", num_classes=10))
    student = create_model("resnet8", num_classes=10)
    distiller = create_distiller(method, teacher, student)
    trainer = DistillTrainer(
        tmp_path / f"{method}-{device}",
        student,
        teacher,
        distiller,
        data,
        recipe,
        seed=0,
        config={"arch": "resnet8"},
        device=device,
    )
    trainer.fit()
    return trainer.history[0], trainer


@pytest.mark.parametrize("method", ["kd", "rkd"])
def test_a_distillation_epoch_on_cuda_matches_cpu(method, tmp_path):
    cpu, _ = _epoch(method, "cpu", tmp_path)
    gpu, trainer = _epoch(method, "cuda", tmp_path)
    assert trainer.bf16  # CUDA runs the recipe's bf16 autocast; CPU stays fp32
    # bf16 keeps ~3 significant digits per op; over 4 SGD steps the mean loss stays within 5%.
    assert gpu["train_loss"] == pytest.approx(cpu["train_loss"], rel=5e-2)
    assert gpu["test_nll"] == pytest.approx(cpu["test_nll"], rel=5e-2)
