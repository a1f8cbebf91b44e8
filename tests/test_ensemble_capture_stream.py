"""A failed CUDA-graph capture hands the caller its stream back (issue 18, item 5), checked on CPU
with stand-ins for the CUDA stream and graph API that fail the way a broken capture does."""

from __future__ import annotations

import contextlib

import pytest
import torch

from bcpd_sim.ensemble.trainer import CudaGraphBackend


class _FakeCuda:
    """current_stream / set_stream / CUDAGraph / graph, recording what happens."""

    def __init__(self) -> None:
        self.stream = "caller"
        self.resets = 0

    def current_stream(self):
        return self.stream

    def set_stream(self, stream):
        self.stream = stream

    def CUDAGraph(self):  # noqa: N802 - mirrors torch.cuda.CUDAGraph
        fake = self

        class Graph:
            def reset(self):
                fake.resets += 1

        return Graph()

    @contextlib.contextmanager
    def graph(self, graph):
        # Like torch.cuda.graph when capture_end() raises on a broken capture: the capture
        # stream is entered and never left.
        self.stream = "capture"
        yield
        self.stream = "caller"


@pytest.mark.parametrize("fails", [False, True])
def test_capture_restores_the_callers_stream_and_frees_the_graph_on_failure(monkeypatch, fails):
    fake = _FakeCuda()
    for name in ("current_stream", "set_stream", "CUDAGraph", "graph"):
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))

    def step():
        assert fake.stream == "capture"
        if fails:
            raise RuntimeError("operation not permitted when stream is capturing")

    if fails:
        with pytest.raises(RuntimeError, match="capturing"):
            CudaGraphBackend.capture(step)
        assert fake.resets == 1
    else:
        CudaGraphBackend.capture(step)
        assert fake.resets == 0
    assert fake.stream == "caller"
