"""Loaded models kept per process, least recently used first out, under a memory budget.

    >>> model = default_cache().get((sha256, "cuda"), lambda: load_model(path))

A worker keeps the models it rendered with recently: `get(key, loader)` calls `loader()` once
per key per process and returns the same object afterwards. When the models held weigh more
than `budget_bytes`, the least recently used ones are dropped (and, on CUDA, the allocator's
cache emptied), never the one just asked for: a single model over the budget is still kept.

A model's weight is the bytes of its parameters and buffers (a LoadedModel's float16 copy
included, once made), measured each time the cache checks its budget. Activations are not
counted: they live only during a forward, bounded by the tile size that validation checks
against its own memory limit. The default cache's budget is `SRMOS_MODEL_CACHE_MB` (MiB,
default 2048).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import torch
from torch import nn

DEFAULT_BUDGET_MB = 2048


def _modules(obj) -> list[nn.Module]:
    if isinstance(obj, nn.Module):
        return [obj]
    found = [getattr(obj, name, None) for name in ("module", "half_module", "model")]
    return [m for m in found if isinstance(m, nn.Module)]


def model_bytes(obj) -> int:
    """Bytes of the parameters and buffers of an nn.Module, or of the modules a LoadedModel
    (`module`, `half_module`) or SRMethod (`model`) holds; shared tensors counted once."""
    tensors = {}
    for module in _modules(obj):
        for t in [*module.parameters(), *module.buffers()]:
            tensors[(t.device, t.data_ptr())] = t.numel() * t.element_size()
    return sum(tensors.values())


def _on_cuda(obj) -> bool:
    return any(t.is_cuda for m in _modules(obj) for t in m.parameters())


class ModelCache:
    """An LRU cache of loaded models under `budget_bytes` (see the module docstring).

    Thread-safe: one lock guards the cache, and a load happens under it, so two threads asking
    for the same key load it once (and a thread asking for another key waits for that load).
    """

    def __init__(self, budget_bytes: int, size_of: Callable[[object], int] = model_bytes):
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
        self.budget_bytes = budget_bytes
        self.size_of = size_of
        self._models: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, loader: Callable[[], object]):
        """The model for `key`, loaded with `loader()` on the first call."""
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            model = loader()
            self._models[key] = model
            self._evict()
            return model

    def _evict(self) -> None:
        sizes = {key: self.size_of(model) for key, model in self._models.items()}
        total, freed_cuda = sum(sizes.values()), False
        while total > self.budget_bytes and len(self._models) > 1:
            key, model = self._models.popitem(last=False)
            total -= sizes[key]
            freed_cuda = freed_cuda or _on_cuda(model)
        if freed_cuda:
            torch.cuda.empty_cache()

    def keys(self) -> list[Hashable]:
        """Keys held, least recently used first."""
        with self._lock:
            return list(self._models)

    def total_bytes(self) -> int:
        with self._lock:
            return sum(self.size_of(model) for model in self._models.values())

    def clear(self) -> None:
        with self._lock:
            self._models.clear()

    def __len__(self) -> int:
        return len(self._models)


def budget_from_env() -> int:
    """SRMOS_MODEL_CACHE_MB in bytes; ValueError naming the variable for a bad value."""
    raw = os.environ.get("SRMOS_MODEL_CACHE_MB", str(DEFAULT_BUDGET_MB))
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not mb >= 0:
        raise ValueError(f"SRMOS_MODEL_CACHE_MB must be a number of MiB >= 0, got {raw!r}")
    return int(mb * 2**20)


_default: ModelCache | None = None
_default_lock = threading.Lock()


def default_cache() -> ModelCache:
    """The process's cache, made on first use with the budget from SRMOS_MODEL_CACHE_MB."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ModelCache(budget_from_env())
        return _default
