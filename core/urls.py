"""Pointing a client's REST URLs somewhere else (a proxy, a mirror, a test server)."""

from collections.abc import Mapping
from urllib.parse import urlsplit


def rebased_urls(urls: Mapping[str, object], base: str) -> dict[str, object]:
    """Each URL with its scheme and host replaced by ``base``'s, its path kept; non-URL
    entries unchanged."""
    root = base.rstrip("/")
    return {
        name: f"{root}{urlsplit(url).path}" if isinstance(url, str) else url
        for name, url in urls.items()
    }
