"""Model prices: the bundled snapshot, model-name lookup and the cost of a request.

Prices are Decimal USD per million tokens. Costs are integer nano-dollars
(10^-9 USD): ``tokens x price-per-million`` is micro-dollars, so with the
table's prices (at most a few decimals) every cost is exact, and sums are
integer sums. Nothing here accumulates floats.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from aispend.errors import AispendError
from aispend.paths import data_dir

BUNDLED = Path(__file__).with_name("snapshot.json")
#: Anthropic bills the whole request at the long-context rates past this many input tokens.
LONG_CONTEXT_THRESHOLD = 200_000

FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")

_DATE_SUFFIX = re.compile(r"-\d{8}$")
_BEDROCK = re.compile(r"^(?:(?:us|eu|jp|apac|au|ca|global|us-gov)\.)?anthropic\.(?P<name>.+?)(?:-v\d+(?::\d+)?)?$")
_SURCHARGED_GEOS = ("us", "eu", "jp", "apac", "au")
_PROVIDER_PREFIXES = ("anthropic/", "openai/", "gemini/")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    name: str  # the table key that matched
    provider: str
    input: Decimal
    output: Decimal
    cache_write_5m: Decimal | None
    cache_write_1h: Decimal | None
    cache_read: Decimal | None
    above_200k: dict[str, Decimal] | None
    fast_multiplier: Decimal | None
    source: str | None


@dataclass(frozen=True, slots=True)
class Cost:
    """The price of one request: ``nusd`` is None when it could not be priced."""

    nusd: int | None
    priced_model: str | None
    note: str | None  # long_context | fast | logged | unknown_model | fast_unpriced


class PricingTable:
    """A pricing snapshot loaded into memory, with the lookup rules."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        if not isinstance(snapshot, dict) or not isinstance(snapshot.get("models"), dict):
            raise AispendError("pricing snapshot has no 'models' table")
        self.id: str = str(snapshot.get("id") or "unknown")
        self.snapshot = snapshot
        self.models: dict[str, dict[str, Any]] = snapshot["models"]
        self._cache: dict[str | None, ModelPrice | None] = {}
        self._rate_cache: dict[tuple[str, bool], tuple[tuple[Decimal, ...], tuple[int, ...] | None]] = {}
        #: per model name: (priced name, integer rates, long-context integer rates or None),
        #: for models whose rates are all whole nano-dollars per thousand tokens (all of them today)
        self._int_cache: dict[str, tuple[str, tuple[int, ...], tuple[int, ...] | None] | None] = {}

    # -- lookup ---------------------------------------------------------
    def candidates(self, model: str) -> list[str]:
        """Names to try for ``model``, best first (see docs/accounting.md)."""
        out: list[str] = []

        def add(name: str) -> None:
            if name and name not in out:
                out.append(name)

        name = model.strip()
        add(name)
        # Proxies and gateways prefix names: converse/, bedrock/, openrouter/anthropic/...
        bare = name
        while "/" in bare:
            bare = bare.split("/", 1)[1]
            add(bare)
        # Vertex writes claude-sonnet-4-5@20250929.
        if "@" in bare:
            base, _, date = bare.partition("@")
            add(f"{base}-{date}" if date.isdigit() else base)
            add(base)
        m = _BEDROCK.match(bare)
        if m:
            geo = bare.split(".", 1)[0] if not bare.startswith("anthropic.") else None
            if geo in _SURCHARGED_GEOS:
                # Regional endpoints share one uplift; when the table lacks this
                # region for the model, another surcharged region's price is it.
                rest = bare[len(geo) + 1 :]
                for other in _SURCHARGED_GEOS:
                    add(f"{other}.{rest}")
            add(m.group("name"))
        for n in list(out):
            stripped = _DATE_SUFFIX.sub("", n)
            add(stripped)
        for n in list(out):
            if "/" not in n:
                for p in _PROVIDER_PREFIXES:
                    add(p + n)
        return out

    def lookup(self, model: str | None) -> ModelPrice | None:
        if model in self._cache:
            return self._cache[model]
        found = None
        if model:
            for cand in self.candidates(model):
                entry = self.models.get(cand)
                if entry is not None and "input" in entry and "output" in entry:
                    found = _model_price(cand, entry)
                    break
        self._cache[model] = found
        return found

    # -- cost -----------------------------------------------------------
    def cost(
        self,
        model: str | None,
        input_tokens: int,
        output_tokens: int,
        cache_write_5m: int = 0,
        cache_write_1h: int = 0,
        cache_read: int = 0,
        speed: str | None = None,
    ) -> Cost:
        if speed is None and model is not None:
            try:
                fast = self._int_cache[model]
            except KeyError:
                fast = self._int_rates(model)
            if fast is not None:
                # The same sums as below, on cached integer rates: most requests take this path.
                name, r, long_r = fast
                if long_r is not None and input_tokens + cache_write_5m + cache_write_1h + cache_read > LONG_CONTEXT_THRESHOLD:
                    r, note = long_r, "long_context"
                else:
                    note = None
                return Cost(
                    input_tokens * r[0] + output_tokens * r[1] + cache_write_5m * r[2] + cache_write_1h * r[3] + cache_read * r[4],
                    name,
                    note,
                )
        price = self.lookup(model)
        if price is None:
            return Cost(None, None, "unknown_model")
        context = input_tokens + cache_write_5m + cache_write_1h + cache_read
        long_context = bool(price.above_200k) and context > LONG_CONTEXT_THRESHOLD
        rates, int_rates = self._rates(price, long_context)
        tokens = (input_tokens, output_tokens, cache_write_5m, cache_write_1h, cache_read)
        note = "long_context" if long_context else None
        if int_rates is not None:
            # Exact integer path: every rate is a whole number of nano-dollars per token x 1000.
            nusd: int | None = sum(t * r for t, r in zip(tokens, int_rates))
            exact: Decimal | None = None
        else:
            nusd = None
            exact = sum((Decimal(t) * r for t, r in zip(tokens, rates)), Decimal(0)) * 1000
        if speed == "fast":
            if price.fast_multiplier is None:
                return Cost(None, price.name, "fast_unpriced")
            if exact is None:
                assert nusd is not None
                exact = Decimal(nusd)
            exact *= price.fast_multiplier
            nusd = None
            note = "fast" if note is None else note + "+fast"
        return Cost(nusd if exact is None else _to_nusd(exact), price.name, note)

    def _int_rates(self, model: str) -> tuple[str, tuple[int, ...], tuple[int, ...] | None] | None:
        price = self.lookup(model)
        found = None
        if price is not None:
            std = self._rates(price, False)[1]
            long_r = self._rates(price, True)[1] if price.above_200k else None
            if std is not None and (long_r is not None or not price.above_200k):
                found = (price.name, std, long_r)
        self._int_cache[model] = found
        return found

    def _rates(self, price: ModelPrice, long_context: bool) -> tuple[tuple[Decimal, ...], tuple[int, ...] | None]:
        """The five rates (USD per million: input, output, 5m write, 1h write, read) in force."""
        key = (price.name, long_context)
        hit = self._rate_cache.get(key)
        if hit is not None:
            return hit
        rates = {
            "input": price.input,
            "output": price.output,
            "cache_write_5m": price.cache_write_5m,
            "cache_write_1h": price.cache_write_1h,
            "cache_read": price.cache_read,
        }
        if long_context and price.above_200k:
            # Anthropic bills the WHOLE request at the long-context rates.
            rates.update(price.above_200k)
            if "cache_write_1h" not in price.above_200k:
                rates["cache_write_1h"] = None  # derived from the long-context input rate below
        is_claude = "claude" in price.name or price.provider.startswith(("anthropic", "vertex_ai-anthropic"))
        inp = rates["input"]
        assert inp is not None
        w5 = rates["cache_write_5m"]
        if w5 is None:
            w5 = inp * Decimal("1.25") if is_claude else inp
        w1 = rates["cache_write_1h"]
        if w1 is None:
            w1 = inp * 2 if is_claude else w5
        rd = rates["cache_read"]
        if rd is None:
            rd = inp
        out = rates["output"]
        assert out is not None
        dec = (inp, out, w5, w1, rd)
        scaled = [r * 1000 for r in dec]
        ints = tuple(int(r) for r in scaled) if all(r == r.to_integral_value() for r in scaled) else None
        self._rate_cache[key] = (dec, ints)
        return dec, ints


def _to_nusd(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def logged_cost_nusd(cost_usd: str) -> int | None:
    """A ``costUSD`` written in the log, as nano-dollars."""
    try:
        d = Decimal(cost_usd)
    except ArithmeticError:
        return None
    if not d.is_finite() or d < 0:
        return None
    return _to_nusd(d * 1_000_000_000)


def _dec(v: Any) -> Decimal | None:
    if v is None:
        return None
    return Decimal(str(v))


def _model_price(name: str, e: dict[str, Any]) -> ModelPrice:
    above = e.get("above_200k")
    return ModelPrice(
        name=name,
        provider=str(e.get("provider", "")),
        input=Decimal(str(e["input"])),
        output=Decimal(str(e["output"])),
        cache_write_5m=_dec(e.get("cache_write_5m")),
        cache_write_1h=_dec(e.get("cache_write_1h")),
        cache_read=_dec(e.get("cache_read")),
        above_200k={k: Decimal(str(v)) for k, v in above.items() if k in FIELDS} if isinstance(above, dict) else None,
        fast_multiplier=_dec(e.get("fast_multiplier")),
        source=e.get("source"),
    )


def stored_path() -> Path:
    """Where ``aispend pricing update`` keeps a newer table."""
    return data_dir() / "pricing.json"


@lru_cache(maxsize=1)
def _bundled() -> dict[str, Any]:
    return json.loads(BUNDLED.read_text("utf-8"))


def load() -> PricingTable:
    """The active table: a stored update if there is one, else the bundled snapshot."""
    p = stored_path()
    if p.exists():
        try:
            return PricingTable(json.loads(p.read_text("utf-8")))
        except (OSError, ValueError) as e:
            raise AispendError(f"stored pricing table {p} is unreadable ({e}); remove it or run 'aispend pricing update --from FILE'") from None
    return PricingTable(_bundled())


def bundled() -> PricingTable:
    return PricingTable(_bundled())
