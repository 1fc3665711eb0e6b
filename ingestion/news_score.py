"""One sentiment score per news item: VADER's compound score with crypto terms added.

VADER's lexicon (vaderSentiment, MIT) reads general English: "Bitcoin surges to record high
as ETF inflows soar" scores 0 there. The terms below carry the market's meaning; their
valences are on VADER's scale (−4 … +4), set by hand from how the words move prices in
crypto headlines. The score is fixed at ingestion and stored with the item.
"""

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

CRYPTO_TERMS: dict[str, float] = {
    # up
    "surge": 2.2,
    "surges": 2.2,
    "surged": 2.2,
    "soar": 2.3,
    "soars": 2.3,
    "soared": 2.3,
    "rally": 2.0,
    "rallies": 2.0,
    "rallied": 2.0,
    "bullish": 2.4,
    "breakout": 1.6,
    "inflows": 1.2,
    "adoption": 1.3,
    "approval": 1.8,
    "approved": 1.8,
    "upgrade": 1.2,
    "ath": 2.0,
    "moon": 1.5,
    "mooning": 1.8,
    "rebound": 1.5,
    "rebounds": 1.5,
    "jumps": 1.6,
    "climbs": 1.4,
    "gains": 1.4,
    # down
    "bearish": -2.4,
    "crash": -2.8,
    "crashes": -2.8,
    "crashed": -2.8,
    "plunge": -2.6,
    "plunges": -2.6,
    "plunged": -2.6,
    "tumble": -2.2,
    "tumbles": -2.2,
    "slump": -2.0,
    "slumps": -2.0,
    "dump": -2.0,
    "dumps": -2.0,
    "selloff": -2.2,
    "sell-off": -2.2,
    "outflows": -1.2,
    "liquidation": -1.8,
    "liquidations": -1.8,
    "liquidated": -2.0,
    "hack": -3.0,
    "hacked": -3.0,
    "exploit": -2.6,
    "exploited": -2.6,
    "rug": -2.8,
    "rugpull": -3.0,
    "scam": -2.8,
    "fraud": -3.0,
    "lawsuit": -1.8,
    "sues": -1.8,
    "ban": -2.0,
    "bans": -2.0,
    "banned": -2.2,
    "delisting": -2.0,
    "delisted": -2.0,
    "insolvency": -3.0,
    "insolvent": -3.0,
    "bankruptcy": -3.0,
    "outage": -1.8,
    "depeg": -2.8,
    "depegged": -2.8,
    "falls": -1.4,
    "drops": -1.4,
    "sinks": -1.8,
}


class NewsScorer:
    def __init__(self) -> None:
        self._analyzer = SentimentIntensityAnalyzer()
        self._analyzer.lexicon.update(CRYPTO_TERMS)

    def score(self, title: str, summary: str = "") -> float:
        """VADER's compound score in [-1, 1] of the title and summary together."""
        text = f"{title}. {summary}" if summary else title
        compound: float = self._analyzer.polarity_scores(text)["compound"]
        return compound
