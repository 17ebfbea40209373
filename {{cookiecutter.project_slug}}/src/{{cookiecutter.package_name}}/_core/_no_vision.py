"""Vision stand-in: this client was generated with ``vision=no``; prompts are text.

It has the vision module's interface, so the client reads the same either way. Images in a
message are refused with a clear error by the text renderer.
"""

from __future__ import annotations

from ._config import ModelConfig as Config
from ._loading import load_tokenizer
from ._prompt import PromptRenderer


def load_renderer(config: Config) -> PromptRenderer:
    """Load the tokenizer and wrap it in a renderer for text chats."""
    return PromptRenderer(load_tokenizer(config), config.chat_template)
