"""Errors raised by the client."""


class ContextWindowExceededError(ValueError):
    """The prompt does not fit in the model's context window."""

    def __init__(self, prompt_tokens: int, context_window: int) -> None:
        super().__init__(
            f"The prompt has {prompt_tokens} tokens, but the model's context window is "
            f"{context_window} tokens: shorten the messages or raise context_window."
        )
        self.prompt_tokens = prompt_tokens
        self.context_window = context_window


class CapabilityError(ValueError):
    """A request asked for a capability this client does not have."""


class InvalidAnswerError(ValueError):
    """The model's answers did not validate against the schema, after every allowed try.

    ``answer`` is the last answer (JSON text, or a tool call's arguments), ``errors`` what the
    validator found wrong in it.
    """

    def __init__(self, answer: str, errors: list[str], attempts: int) -> None:
        super().__init__(
            f"No answer validated against the schema in {attempts} attempt(s); the last one "
            f"failed with: {'; '.join(errors)}. Raise max_resamples, sample (temperature) "
            "instead of decoding greedily, or simplify the schema."
        )
        self.answer = answer
        self.errors = errors


class ClientClosedError(RuntimeError):
    """The client was used after ``close()``."""


class ModelLoadError(OSError):
    """The model cannot be loaded: a missing or incomplete directory, a name the hub does not
    know, a hub that cannot be reached. The message names the model and what to do."""


class RequestFailedError(RuntimeError):
    """A request's own code (a logits processor, a grammar) raised what is no ``Exception``,
    such as ``SystemExit``: it ends that request only (the original is its ``__cause__``)."""


def request_error(error: BaseException) -> Exception:
    """``error`` as the failure of one request: an ``Exception`` as it is, anything else
    wrapped, so that it stops neither the engine thread nor the caller's event loop."""
    if isinstance(error, Exception):
        return error
    wrapped = RequestFailedError(f"The request's decoding raised {type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped
