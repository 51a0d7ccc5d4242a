"""Prices: a model litellm cannot describe is asked about once; priced models are priced on every call as before."""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest

from kilod.agent.prices import Prices


@pytest.fixture(scope="module")
def litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    return importlib.import_module("litellm")


class Pricing:
    """litellm's own cost_per_token, counting how often it is asked."""

    def __init__(self, litellm: Any, model: str) -> None:
        self.litellm, self.model, self.calls = litellm, model, 0

    def __call__(self) -> float:
        self.calls += 1
        prompt, completion = self.litellm.cost_per_token(model=self.model, prompt_tokens=1000, completion_tokens=100)
        return float(prompt) + float(completion)


def test_an_unknown_model_is_looked_up_once(litellm: Any) -> None:
    prices = Prices()
    pricing = Pricing(litellm, "openai/kilod-no-such-model")
    assert prices.cost(litellm, pricing.model, pricing) is None
    assert prices.cost(litellm, pricing.model, pricing) is None
    assert pricing.calls == 1
    assert prices.unpriced(pricing.model)


def test_a_priced_model_costs_what_litellm_says_on_every_call(litellm: Any) -> None:
    prices = Prices()
    pricing = Pricing(litellm, "openai/gpt-4o")
    expected = Pricing(litellm, "openai/gpt-4o")()
    assert expected > 0
    assert [prices.cost(litellm, pricing.model, pricing) for _ in range(3)] == [expected] * 3
    assert pricing.calls == 3


def test_a_known_model_whose_pricing_failed_once_is_not_remembered_as_unpriced(litellm: Any) -> None:
    prices = Prices()
    model = "openai/gpt-4o"

    def broken() -> float:
        raise ValueError("a response litellm could not read")

    assert prices.cost(litellm, model, broken) is None
    assert not prices.unpriced(model)
    assert prices.cost(litellm, model, Pricing(litellm, model)) == Pricing(litellm, model)()


def test_a_price_registered_for_a_model_is_used(litellm: Any) -> None:
    model = "openai/kilod-test-registered"
    litellm.register_model({model: {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
                                    "litellm_provider": "openai", "mode": "chat"}})
    assert Prices().cost(litellm, model, Pricing(litellm, model)) == pytest.approx(1000 * 1e-6 + 100 * 2e-6)
