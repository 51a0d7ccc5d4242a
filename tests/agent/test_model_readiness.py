"""A model whose provider has no credentials is refused when the card is created, naming the variable."""

from __future__ import annotations

import pytest

from kilod.agent.models import Models
from kilod.errors import Invalid

KEYS = ("OPENAI_API_KEY", "OPENAI_API_BASE", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_API_BASE",
        "GEMINI_API_KEY", "GOOGLE_API_KEY", "OLLAMA_API_BASE")


@pytest.fixture
def models(monkeypatch: pytest.MonkeyPatch) -> Models:
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    return Models(None, 30.0)


@pytest.mark.parametrize(("model", "named"), [
    ("openai/gpt-4o", "OPENAI_API_KEY"),
    ("anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
    ("gemini/gemini-pro", "GOOGLE_API_KEY or GEMINI_API_KEY"),
])
async def test_a_provider_without_credentials_is_refused_naming_the_variable(
        models: Models, model: str, named: str) -> None:
    with pytest.raises(Invalid) as caught:
        await models.validate(model)
    assert named in caught.value.message and caught.value.details == {"field": "models"}


async def test_a_key_or_a_base_url_makes_it_ready(models: Models, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-kilod-test")
    await models.validate("openai/gpt-4o")
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("ANTHROPIC_API_BASE", "http://127.0.0.1:9/")  # a local server that needs no key
    await models.validate("anthropic/claude-sonnet-4-5")


async def test_providers_that_need_no_key_are_ready(models: Models) -> None:
    await models.validate("ollama/llama3")            # litellm's default base URL, no key
    await models.validate("hosted_vllm/fake-model")   # a self-hosted server
    await models.validate("scripted/hello")           # kilod's own
