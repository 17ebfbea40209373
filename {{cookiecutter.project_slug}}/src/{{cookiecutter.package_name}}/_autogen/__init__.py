"""The AutoGen front: a ``ChatCompletionClient`` on the core, and its command line demo."""
