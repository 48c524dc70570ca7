"""The retry-storm oracle: how many calls each layer made per user request.

Two nested layers that each retry 3 times turn one request into 9 upstream calls; under an
outage that multiplies the load on the one part that is already failing. Finagle's and
gRPC's retry budgets and Envoy's retry budget cap retries at about 20% of calls, with a
small minimum so that a quiet service can still retry. ``check_amplification`` holds every
layer to that rule: at most ``max_ratio`` calls per user request, plus ``minimum`` calls in
all. Layers and requests come from ``watch_calls`` (or ``Retry`` names); see
``pytest_resilience._calltree``.
"""

from __future__ import annotations

import math

from pytest_resilience._calltree import Requests, requests
from pytest_resilience.checks._select import HistoryLike, select
from pytest_resilience.checks._verdict import Verdict, describe, failed, passed, recorded

__all__ = ["check_amplification"]

NAME = "amplification"


def _per_layer(found: Requests, counts: dict[str, int]) -> str:
    return ", ".join(f"{layer} {counts.get(layer, 0)}" for layer in found.ordered())


@recorded
def check_amplification(history: HistoryLike, max_ratio: float = 1.2, *, minimum: int = 3,
                        layer: str | None = None) -> Verdict:
    """Judge the calls each layer (or ``layer`` only) made per user request.

    A layer may make at most ``max_ratio * requests + minimum`` calls in all. A failing
    verdict names the layer, its amplification, the budget, and the request that was
    amplified most with its calls per layer.
    """
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, int | float) \
            or not math.isfinite(max_ratio) or max_ratio < 1:
        raise ValueError(f"max_ratio={max_ratio!r} is not an amplification budget. Pass a "
                         "number >= 1, e.g. 1.2 (20% more calls than requests).")
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise ValueError(f"minimum={minimum!r} is not a number of calls. Pass an int >= 0.")
    found = requests(select(history, ""))
    layers = [layer] if layer is not None else found.ordered()
    if not found.count or not layers or not any(found.layers[name] for name in layers):
        return failed(NAME, "No watched calls (call.start) or retry attempts to count calls "
                      "per request from. Watch each layer with watch_calls(..., name=).", [])
    budget = max_ratio * found.count + minimum
    worst = max(layers, key=lambda name: (found.layers[name], name))
    if found.layers[worst] > budget:
        start, counts = max(found.per_request, key=lambda r: r[1][worst],
                            default=(None, {}))
        example = "" if start is None else (
            f" The most amplified request ({describe(start)}) made: "
            f"{_per_layer(found, counts)}.")
        return failed(
            NAME,
            f"Layer {worst!r} made {found.layers[worst]} calls for {found.count} user "
            f"request(s): {found.ratio(worst):.3g}x amplification, above the budget of "
            f"{max_ratio:g}x + {minimum} = {math.floor(budget)} calls (retry budgets let "
            f"retries add about 20% of calls, with a small minimum). Calls per layer: "
            f"{_per_layer(found, dict(found.layers))}.{example}",
            [start] if start is not None else [],
        )
    return passed(NAME, f"{found.count} user request(s); calls per layer: "
                  f"{_per_layer(found, dict(found.layers))}; every layer within "
                  f"{max_ratio:g}x + {minimum} calls.")
