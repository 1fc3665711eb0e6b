"""Which coins a headline is about: tickers and names on word boundaries.

A ticker counts only in capitals ("SOL", "$SOL"), a name in any case ("Solana", "solana");
both only as whole words, so "solution" is not SOL and "ether" is not "Ethernet". The names
known here are the large assets' own; any other asset is found by its ticker.
"""

import re
from collections.abc import Iterable

# Names an asset goes by in headlines, besides its ticker.
ASSET_NAMES: dict[str, tuple[str, ...]] = {
    "BTC": ("bitcoin", "bitcoins"),
    "ETH": ("ethereum", "ether"),
    "SOL": ("solana",),
    "XRP": ("ripple",),
    "BNB": ("binance coin",),
    "ADA": ("cardano",),
    "DOGE": ("dogecoin",),
    "AVAX": ("avalanche",),
    "DOT": ("polkadot",),
    "LINK": ("chainlink",),
    "LTC": ("litecoin",),
    "TRX": ("tron",),
    "MATIC": ("polygon",),
    "USDT": ("tether",),
    "USDC": ("usd coin",),
}
# Tickers that are also everyday capitalised words or abbreviations: only their names count.
AMBIGUOUS_TICKERS = frozenset({"LINK", "DOT", "ONE", "GAS", "NEAR", "OP", "GT", "AI", "IT"})


class CoinDetector:
    def __init__(self, assets: Iterable[str]) -> None:
        wanted = {asset.upper() for asset in assets} | set(ASSET_NAMES)
        # An ambiguous ticker without a known name cannot be told from the word: left out.
        self.assets = tuple(
            sorted(
                asset for asset in wanted if asset in ASSET_NAMES or asset not in AMBIGUOUS_TICKERS
            )
        )
        self._patterns = {asset: _pattern(asset) for asset in self.assets}

    def mentioned(self, *texts: str) -> tuple[str, ...]:
        """The assets the texts mention, sorted."""
        joined = "\n".join(texts)
        return tuple(asset for asset, pattern in self._patterns.items() if pattern.search(joined))


def _pattern(asset: str) -> re.Pattern[str]:
    alternatives = [f"(?i:{re.escape(name)})" for name in ASSET_NAMES.get(asset, ())]
    if asset not in AMBIGUOUS_TICKERS:
        alternatives.append(rf"\$?{re.escape(asset)}")
    # Word boundaries that also hold next to "$" and digits: "BTC-USD" and "BTC's" count.
    return re.compile(rf"(?<![\w$])(?:{'|'.join(alternatives)})(?!\w)")
