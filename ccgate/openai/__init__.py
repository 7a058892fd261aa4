"""OpenAI Chat Completions <-> Anthropic Messages translation (pure functions, no I/O)."""
