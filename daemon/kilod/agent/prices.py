"""Which models litellm has no price for, learned once per model.

litellm's cost functions (`completion_cost`, `cost_per_token`) look an unknown model up
through every fallback (provider prefixes, aliases, its model-info walk) before they give
up, and they do it again on every call: ~1 ms of Python each, holding the GIL, which at 20
live attempts on an unpriced model was a fifth of litellm's thread. A model litellm cannot
describe at all (`get_model_info` fails) has no price now and will have none later in this
process (prices are registered when litellm loads), so its calls skip the lookup. Every other
model is priced exactly as before, on every call: a price that failed once for another reason
is never remembered as missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Prices:
    def __init__(self) -> None:
        self._unpriced: set[str] = set()   # read and added to from several threads: a set's add is atomic

    def cost(self, litellm: Any, model: str, price: Callable[[], Any]) -> float | None:
        """`price()`'s figure as a float, or None when it fails or says nothing (an unknown model: without asking)."""
        if model in self._unpriced:
            return None
        try:
            cost = price()
        except Exception:
            if not known(litellm, model):
                self._unpriced.add(model)
            return None
        return float(cost) if cost is not None else None

    def unpriced(self, model: str) -> bool:
        return model in self._unpriced


def known(litellm: Any, model: str) -> bool:
    """Whether litellm's model map (with the prices registered at load) describes `model`."""
    try:
        litellm.get_model_info(model)
    except Exception:
        return False
    return True
