"""The built-in agent: a model called through litellm, tools run inside the sandbox."""
