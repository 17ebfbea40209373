"""The remote engine: a vLLM server generates the tokens; the client does everything else.

The client renders the prompt with its own tokenizer and chat template, counts tokens, reads
tool calls and reasoning, and applies stop strings, exactly as with the local engine; the
server only turns token ids into token ids. vLLM's ``/v1/completions`` takes the prompt as a
list of token ids and, with ``return_token_ids``, streams back the ids it generated, so answers,
calls, finish reasons and usage are the same as with the local engine. Grammars (forced tool
calls, JSON output) travel as vLLM ``structured_outputs``; a server cannot close a grammar in
time, so it gets a budget a few tokens short, and an answer it cuts off is completed here by
the grammar's shortest way to finish, as the local engine would.

Written with ``httpx`` rather than an OpenAI SDK: the token-id prompt, ``return_token_ids`` and
``structured_outputs`` are vLLM's own fields. One HTTP client per event loop keeps connections
alive between requests (making a client costs tens of milliseconds, a TLS handshake more); a
request that stops early closes its connection, which aborts the generation on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from transformers import GenerationConfig, PreTrainedTokenizerBase, StopStringCriteria

from ._config import ModelConfig as Config
from ._engine import TokenCallback
from ._errors import CapabilityError, ClientClosedError
from ._generation import GenerationOutput, GenerationRequest, SAMPLING_FIELDS

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

INSTALL_HINT = {{ ("pip install '" ~ cookiecutter.project_slug ~ "[vllm]'") | py }}
"""How to install httpx, the optional dependency that talking to a server needs."""

_SERVER_ARGUMENTS = {"min_new_tokens": "min_tokens", "min_p": "min_p", "eos_token_id": None}
"""``extra_create_args`` a server takes (with its name there); None: handled here."""

_BACKOFF_S = 0.5


class ServerError(RuntimeError):
    """The server failed or refused a request; the message names the server and the model."""


class RemoteGeneration:
    """One request on the server: the task that streams it, and its outcome."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.cancelled = False
        self.task: asyncio.Task[GenerationOutput] | None = None

    def cancel(self) -> None:
        """Stop the request: the stream closes and the server aborts it (any thread)."""
        self.cancelled = True
        if self.task is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop took the request with it
                self._loop.call_soon_threadsafe(self.task.cancel)

    async def result(self) -> GenerationOutput:
        """The output once the request ended (see ``_engine.Generation``)."""
        assert self.task is not None
        return await asyncio.shield(self.task)


class RemoteEngine:
    """Streams requests to a vLLM server (see the module docstring)."""

    def __init__(self, config: Config, tokenizer: PreTrainedTokenizerBase) -> None:
        try:
            import httpx
        except ImportError as error:
            raise CapabilityError(
                f"Talking to a vLLM server (base_url) needs httpx: {INSTALL_HINT}"
            ) from error
        assert config.base_url is not None
        self._httpx = httpx
        self._base_url = config.base_url.rstrip("/")
        self._model = config.served_model_name or config.model_name
        self._api_key = os.environ.get(config.api_key_env)
        self._timeout = httpx.Timeout(config.request_timeout, connect=config.connect_timeout)
        self._max_retries = config.max_retries
        self._tokenizer = tokenizer
        self._defaults = _generation_defaults(config)
        self._running: set[RemoteGeneration] = set()
        self._closed = False
        self._http: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    def submit(self, request: GenerationRequest, on_tokens: TokenCallback | None) -> RemoteGeneration:
        """Start ``request`` on the server (see ``_engine.Engine``).

        Raises:
            CapabilityError: the request asks for what the server cannot do (logits
                processors, beam search, images).
        """
        if self._closed:
            raise ClientClosedError("The client was closed.")
        body = self._body(request)
        generation = RemoteGeneration(asyncio.get_running_loop())
        generation.task = asyncio.ensure_future(self._run(request, body, generation, on_tokens))
        self._running.add(generation)
        generation.task.add_done_callback(lambda _: self._running.discard(generation))
        return generation

    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Run ``function(*args)`` in a worker thread (no model runs in this process)."""
        return await asyncio.to_thread(function, *args)

    async def close(self) -> None:
        """Cancel the running requests; refuse new ones."""
        self._closed = True
        running = list(self._running)
        for generation in running:
            generation.cancel()
        await asyncio.gather(*(g.result() for g in running), return_exceptions=True)
        if self._http is not None and self._http[0] is asyncio.get_running_loop():
            await self._http[1].aclose()
        self._http = None

    # -- The request ---------------------------------------------------------------------------

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        if request.model_inputs:
            raise CapabilityError("Images are not supported with a vLLM server (base_url).")
        extra = dict(request.extra_arguments)
        unsupported = sorted(name for name in extra if name not in _SERVER_ARGUMENTS)
        if unsupported:
            raise CapabilityError(
                f"extra_create_args {unsupported} are not supported with a vLLM server "
                f"(base_url); it takes {sorted(_SERVER_ARGUMENTS)} and the generation fields."
            )
        config = GenerationConfig.from_dict(self._defaults.to_dict())
        config.update(  # type: ignore[no-untyped-call]
            **{
                name: getattr(request.settings, name)
                for name in SAMPLING_FIELDS
                if getattr(request.settings, name) is not None
            },
            **extra,
        )
        body: dict[str, Any] = {
            "model": self._model,
            "prompt": request.input_ids,
            "max_tokens": request.max_new_tokens - _reserve(request),
            "stream": True,
            "stream_options": {"include_usage": True},
            "return_token_ids": True,
            "skip_special_tokens": False,
            "ignore_eos": True,  # the request's own end tokens, below
            "stop_token_ids": sorted(_eos(config)),
            "temperature": config.temperature if config.do_sample else 0.0,
            "top_p": config.top_p if config.do_sample else 1.0,
            "top_k": (config.top_k or -1) if config.do_sample else -1,
            "repetition_penalty": config.repetition_penalty or 1.0,
        }
        for name, server_name in _SERVER_ARGUMENTS.items():
            if server_name is not None and name in extra:
                body[server_name] = extra[name]
        if request.settings.seed is not None:
            body["seed"] = request.settings.seed
        if request.constraint is not None:
            body["structured_outputs"] = request.constraint.structured_outputs()
        return body

    async def _run(
        self,
        request: GenerationRequest,
        body: dict[str, Any],
        generation: RemoteGeneration,
        on_tokens: TokenCallback | None,
    ) -> GenerationOutput:
        eos = set(body["stop_token_ids"])
        stop = StopStringCriteria(self._tokenizer, request.settings.stop) if request.settings.stop else None
        tokens: list[int] = []
        reason = "length"
        try:
            async for chunk in self._stream(body):
                for token in chunk:
                    tokens.append(token)
                    if on_tokens is not None:
                        on_tokens([token])
                    if token in eos:
                        reason = "eos"
                    elif stop is not None and bool(stop(torch.tensor([tokens]), None).any()):
                        reason = "stop"
                    elif len(tokens) < request.max_new_tokens:
                        continue
                    return GenerationOutput(tokens, reason == "eos", cancelled=False)
        except asyncio.CancelledError:
            if not generation.cancelled:
                raise
            return GenerationOutput(tokens, ended_with_eos=False, cancelled=True)
        if request.constraint is not None and _reserve(request):
            left = request.max_new_tokens - len(tokens)
            ending = await asyncio.to_thread(request.constraint.completion, tokens, eos, left)
            if ending:  # the server was cut off early: the grammar's way to finish, taken here
                tokens += ending
                if on_tokens is not None:
                    on_tokens(ending)
                return GenerationOutput(tokens, ending[-1] in eos, cancelled=False)
        return GenerationOutput(tokens, ended_with_eos=False, cancelled=False)

    def _client(self) -> httpx.AsyncClient:
        """The running event loop's HTTP client (a new loop gets a new one)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http[0] is not loop:
            unlimited = self._httpx.Limits(max_connections=None, max_keepalive_connections=20)
            self._http = (loop, self._httpx.AsyncClient(timeout=self._timeout, limits=unlimited))
        return self._http[1]

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[list[int]]:
        """The generated token ids, chunk by chunk; connection errors are retried."""
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        url = f"{self._base_url}/completions"
        for attempt in range(self._max_retries + 1):
            try:
                async with self._client().stream("POST", url, json=body, headers=headers) as response:
                    if response.status_code != 200:
                        raise self._refused(response.status_code, (await response.aread()).decode())
                    async for line in response.aiter_lines():
                        if not line.startswith("data: ") or line == "data: [DONE]":
                            continue
                        event = json.loads(line[len("data: ") :])
                        if "error" in event:
                            raise ServerError(self._describe(str(event["error"])))
                        for choice in event.get("choices") or []:
                            if choice.get("token_ids"):
                                yield [int(token) for token in choice["token_ids"]]
                    return
            except self._httpx.TransportError as error:
                if not isinstance(error, (self._httpx.ConnectError, self._httpx.ConnectTimeout)):
                    raise ServerError(self._describe(f"the connection failed: {error}")) from error
                if attempt == self._max_retries:
                    raise ServerError(
                        self._describe(f"it cannot be reached ({error}); is the server running?")
                    ) from error
                await asyncio.sleep(_BACKOFF_S * 2**attempt)

    def _describe(self, problem: str) -> str:
        return f"vLLM server {self._base_url}, model {self._model!r}: {problem}"

    def _refused(self, status: int, text: str) -> Exception:
        try:
            message = str(json.loads(text).get("error", {}).get("message", text))
        except (json.JSONDecodeError, AttributeError):
            message = text
        if status == 404:
            return ServerError(self._describe(f"the model is not served there ({message})"))
        if "context length" in message or "max_model_len" in message:
            return ServerError(
                self._describe(
                    f"the prompt does not fit ({message}); if the server runs with a smaller "
                    "--max-model-len than the model's context, set context_window to match"
                )
            )
        return ServerError(self._describe(f"HTTP {status}: {message}"))


def _reserve(request: GenerationRequest) -> int:
    """Tokens of the request's budget kept back from the server to close its grammar here."""
    return 0 if request.constraint is None else request.constraint.server_reserve()


def _generation_defaults(config: Config) -> GenerationConfig:
    """The model's ``generation_config.json`` with transformers' defaults under it, as the local
    engine resolves a request's settings."""
    try:
        loaded = GenerationConfig.from_pretrained(
            config.model_name,
            revision=config.revision or "main",
            local_files_only=config.local_files_only,
        )
    except OSError:
        loaded = GenerationConfig()  # type: ignore[no-untyped-call]
    defaults: dict[str, Any] = getattr(GenerationConfig, "_get_default_generation_params", dict)()
    unset = {k: v for k, v in defaults.items() if getattr(loaded, k, None) is None}
    loaded.update(**unset)  # type: ignore[no-untyped-call]
    return loaded


def _eos(config: GenerationConfig) -> set[int]:
    eos = config.eos_token_id
    if eos is None:
        return set()
    return {int(eos)} if isinstance(eos, int) else {int(token) for token in eos}
