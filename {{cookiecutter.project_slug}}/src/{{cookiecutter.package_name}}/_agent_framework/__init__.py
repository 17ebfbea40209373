"""The Agent Framework front: a ``BaseChatClient`` on the core, with function invocation,
middleware and telemetry as Agent Framework's own clients have them."""
