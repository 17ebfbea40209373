"""The framework-free core: everything a client does that no agent framework decides.

A request flows chat -> prompt -> engine -> text, tool calls or JSON:

- requests: ``_chat`` (one client's requests), ``_model`` (the loaded model, shared by
  clients), ``_types`` (what fronts hand in and get back), ``_config``, ``_defaults``;
- prompt: ``_prompt`` (chat templates), ``_vision`` and ``_vision_chat`` (images),
  ``_loading``, ``_model_source``, ``_device``;
- engine: ``_engine`` (the interface), ``_local_engine`` (this process: ``_worker``,
  ``_scheduler``, ``_kv_batch``, ``_prefix_cache``, ``_solo``, ``_decoding``,
  ``_generation``), ``_remote_engine`` (a vLLM server);
- answer: ``_text`` (streamed text, reasoning, stop strings), ``_tools``, ``_tool_format``,
  ``_tool_parsers`` and ``_tool_choice`` (calls in the model's own syntax);
- constraints: ``_constrained`` (grammars), ``_schema`` (JSON Schema), ``_json_output``.

Nothing here imports AutoGen or Agent Framework; the fronts (``_autogen``,
``_agent_framework``) convert their types to ``_types`` and back.
"""
