"""The keys and values of the requests that decode together, stacked into one batch.

Each request is prefilled on its own (its prompt, minus any prefix found in the prefix cache)
and then joins the batch: its cache is left-padded to the batch's width, or the batch is
left-padded to its width, and an attention mask hides the padding. Each row keeps its own
positions, so requests of any length decode side by side. A finished row leaves at once, and
padding columns that no row needs any more are dropped.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache, PretrainedConfig
from transformers.cache_utils import DummyLayer, DynamicLayer, get_layer_types_and_kwargs

LayerKV = tuple[torch.Tensor, torch.Tensor] | None
"""One layer's keys and values (``[1, heads, tokens, head_dim]`` each), or None for a layer
that stores none (it reads another layer's)."""

_POSITIONAL_LAYERS = frozenset({"full_attention", "sliding_attention", "chunked_attention"})


def batchable_layer_types(config: PretrainedConfig) -> list[str] | None:
    """The cache layer types of a model whose rows can be stacked, or None when they cannot.

    Attention layers keep one key and value per token, so rows of different lengths line up
    with padding. Sliding and chunked attention layers are kept whole (the attention mask still
    applies the window). Recurrent or compressed layers (linear attention, state-space models)
    have no per-token state to pad: such models generate one request at a time.
    """
    layer_types, _ = get_layer_types_and_kwargs(config.get_text_config(decoder=True))
    if all(kind in _POSITIONAL_LAYERS or kind == "dummy" for kind in layer_types):
        return list(layer_types)
    return None


def new_cache(layer_types: list[str], layers: list[LayerKV] | None = None) -> DynamicCache:
    """A cache for one row, empty or holding ``layers`` (views are fine: updates never write
    into the tensors they were given)."""
    cache = DynamicCache()
    cache.layers = [
        DummyLayer() if kind == "dummy" else DynamicLayer()  # type: ignore[no-untyped-call]
        for kind in layer_types
    ]
    for layer, kv in zip(cache.layers, layers or [], strict=False):
        if kv is not None:
            assert isinstance(layer, DynamicLayer)
            layer.update(*kv)
    return cache


def _kv(layer: object) -> LayerKV:
    """A cache layer's keys and values, if it holds any."""
    if isinstance(layer, DynamicLayer) and layer.is_initialized:
        keys, values = layer.keys, layer.values
        if keys is not None and values is not None:
            return keys, values
    return None


def _set_kv(layer: object, keys: torch.Tensor, values: torch.Tensor) -> None:
    assert isinstance(layer, DynamicLayer)
    layer.keys, layer.values = keys, values


def cache_layers(cache: DynamicCache) -> list[LayerKV]:
    """The keys and values of each layer of a one-row cache."""
    return [_kv(layer) for layer in cache.layers]


def _pad_left(tensor: torch.Tensor, columns: int, dim: int) -> torch.Tensor:
    if columns == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = columns
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


class KVBatch:
    """The batch cache, its attention mask (``[rows, width]``, 0 on padding) and rows' lengths."""

    def __init__(self, layer_types: list[str]) -> None:
        self._layer_types = layer_types
        self.cache = new_cache(layer_types)
        self.mask = torch.zeros((0, 0), dtype=torch.long)
        self._empty = True

    @property
    def rows(self) -> int:
        """The number of rows."""
        return int(self.mask.shape[0])

    @property
    def width(self) -> int:
        """Columns of the cache: the longest row plus the padding before shorter ones."""
        return int(self.mask.shape[1])

    def add(self, cache: DynamicCache, length: int) -> None:
        """Append a prefilled one-row ``cache`` of ``length`` tokens as the last row."""
        row_mask = torch.ones((1, length), dtype=torch.long, device=self.mask.device)
        if self._empty:
            self.cache, self.mask, self._empty = cache, row_mask.to(self._device(cache)), False
            return
        width = max(self.width, length)
        for batch_layer, row_layer in zip(self.cache.layers, cache.layers, strict=True):
            batch_kv, row_kv = _kv(batch_layer), _kv(row_layer)
            if batch_kv is None or row_kv is None:
                continue
            keys, values = (
                torch.cat(
                    [
                        _pad_left(batch_tensor, width - self.width, dim=2),
                        _pad_left(row_tensor, width - length, dim=2),
                    ]
                )
                for batch_tensor, row_tensor in zip(batch_kv, row_kv, strict=True)
            )
            _set_kv(batch_layer, keys, values)
        self.mask = torch.cat(
            [
                _pad_left(self.mask, width - self.width, dim=1),
                _pad_left(row_mask.to(self.mask.device), width - length, dim=1),
            ]
        )

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in this order); drop padding columns that no row needs."""
        if not rows:
            self.cache, self.mask, self._empty = new_cache(self._layer_types), self.mask[:0, :0], True
            return
        index = torch.tensor(rows, device=self.mask.device)
        mask = self.mask.index_select(0, index)
        used = mask.any(dim=0).nonzero()
        start = int(used[0]) if used.numel() else 0
        self.mask = mask[:, start:]
        for layer in self.cache.layers:
            if (kv := _kv(layer)) is not None:
                keys, values = (
                    tensor.index_select(0, index.to(tensor.device))[:, :, start:] for tensor in kv
                )
                _set_kv(layer, keys, values)

    def grow(self) -> torch.Tensor:
        """Add one column for the tokens about to be decoded; return the mask to pass."""
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.rows, 1))], dim=1)
        return self.mask

    def shrink(self) -> None:
        """Undo :meth:`grow` and any cache column a failed step appended."""
        self.mask = self.mask[:, :-1]
        for layer in self.cache.layers:
            if (kv := _kv(layer)) is not None:
                _set_kv(layer, kv[0][:, :, : self.width], kv[1][:, :, : self.width])

    def row_layers(self, row: int) -> list[LayerKV]:
        """Copies of one row's keys and values without its padding (for the prefix cache)."""
        start = int(self.mask[row].nonzero()[0])
        return [
            None
            if kv is None
            else (kv[0][row : row + 1, :, start:].clone(), kv[1][row : row + 1, :, start:].clone())
            for kv in map(_kv, self.cache.layers)
        ]

    @staticmethod
    def _device(cache: DynamicCache) -> torch.device:
        for kv in map(_kv, cache.layers):
            if kv is not None:
                return kv[0].device
        return torch.device("cpu")
