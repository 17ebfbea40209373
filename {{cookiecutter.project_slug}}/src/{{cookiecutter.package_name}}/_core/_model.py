"""The model behind the clients: loaded once per process and shared by every front.

A client (AutoGen's, Agent Framework's) asks :func:`acquire` for its config's model and gets
the one already loaded when another client has the same model settings (the fields of
:data:`MODEL_FIELDS`; decoding defaults, ``tool_choice`` and ``max_resamples`` stay per
client). The last client to :meth:`SharedModel.release` it stops the engine and frees the
weights; one dropped without ``close()`` stops it when garbage collected.
"""

from __future__ import annotations

import json
import threading
import weakref

from transformers import PreTrainedTokenizerBase

from ._config import GenerationSettings, ModelConfig
from ._device import check_device
from ._engine import Engine
from ._json_output import JsonOutput
from ._loading import check_model_source, check_tokenizer, context_window, load_model_config
from ._local_engine import LocalEngine
from ._prompt import PromptRenderer
from ._remote_engine import RemoteEngine
from ._tools import ToolCalling
from ._vision import load_renderer

MODEL_FIELDS = frozenset(
    set(ModelConfig.model_fields)
    - set(GenerationSettings.model_fields)
    - {"tool_choice", "max_resamples"}
)
"""The config fields that decide which model a client gets: the same values, the same model."""

_LOADED: weakref.WeakValueDictionary[str, SharedModel] = weakref.WeakValueDictionary()
_LOADED_LOCK = threading.Lock()


class SharedModel:
    """A loaded model: its prompt renderer, its engine, what its template does with tools."""

    def __init__(self, config: ModelConfig, owner: str) -> None:
        self.key = model_key(config)
        check_model_source(config)
        check_device(config)
        self.renderer: PromptRenderer = load_renderer(config)
        self.tokenizer: PreTrainedTokenizerBase = self.renderer.tokenizer
        check_tokenizer(self.tokenizer, config.model_name)
        self.context_window = context_window(config, load_model_config(config), self.tokenizer)
        self.engine: Engine
        if config.base_url is None:
            local = LocalEngine(config, self.renderer.model_class, self.tokenizer, owner)
            # Clients dropped without close() still stop the thread and free the model.
            weakref.finalize(self, local.stop)
            self.engine = local
        else:
            self.engine = RemoteEngine(config, self.tokenizer)
        self.tool_calling = ToolCalling(self.renderer, config)
        self.json_output = JsonOutput(self.tokenizer)
        self._clients: weakref.WeakSet[object] = weakref.WeakSet()

    async def release(self, client: object) -> None:
        """``client`` is done with the model; the last one stops the engine (requests still
        waiting fail with ``ClientClosedError``, running ones are cancelled) and releases the
        model. A client dropped without releasing it counts no more."""
        with _LOADED_LOCK:
            self._clients.discard(client)
            last = not self._clients
            if last and _LOADED.get(self.key) is self:
                del _LOADED[self.key]
        if last:
            await self.engine.close()


def model_key(config: ModelConfig) -> str:
    """What identifies ``config``'s model: its :data:`MODEL_FIELDS`, as JSON."""
    return json.dumps(config.model_dump(mode="json", include=set(MODEL_FIELDS)), sort_keys=True)


def acquire(config: ModelConfig, client: object, owner: str) -> SharedModel:
    """The model for ``client``'s ``config``: the one loaded for another open client with the
    same model settings, else a new one (the tokenizer loads here, the weights in the
    background, on a thread that ``owner`` names).

    Raises:
        ModelLoadError: the model, its tokenizer or its device cannot be loaded.
    """
    key = model_key(config)
    with _LOADED_LOCK:
        model = _LOADED.get(key)
        if model is None:
            model = _LOADED[key] = SharedModel(config, owner)
        model._clients.add(client)
        return model
