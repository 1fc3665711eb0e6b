"""A loopback HTTP server answering like a news site's feed or a public JSON API: documents
per path (with or without its query), ETag and Last-Modified with 304s, and on demand an
error status, a Retry-After, or a slow answer."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from loopback_http import serving


@dataclass
class Document:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    status: int = 200
    delay_seconds: float = 0.0
    retry_after: str | None = None


@dataclass
class FeedSite:
    documents: dict[str, Document] = field(default_factory=dict)
    # (path, request headers) of every request, in order.
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    base_url: str = ""


@contextmanager
def feed_site() -> Iterator[FeedSite]:
    site = FeedSite()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            document = site.documents.get(self.path) or site.documents.get(
                self.path.split("?", 1)[0]
            )
            if document is None:
                self.send_error(404)
                return
            time.sleep(document.delay_seconds)
            if document.status != 200:
                self.send_response(document.status)
                if document.retry_after is not None:
                    self.send_header("Retry-After", document.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if _not_modified(self.headers.get("If-None-Match"), document.etag) or (
                document.last_modified is not None
                and self.headers.get("If-Modified-Since") == document.last_modified
                and document.etag is None
            ):
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", document.content_type)
            self.send_header("Content-Length", str(len(document.body)))
            if document.etag:
                self.send_header("ETag", document.etag)
            if document.last_modified:
                self.send_header("Last-Modified", document.last_modified)
            self.end_headers()
            self.wfile.write(document.body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads ``site.requests``."""

    with serving(Handler) as base_url:
        site.base_url = base_url
        yield site


def _not_modified(sent: str | None, etag: str | None) -> bool:
    return sent is not None and etag is not None and sent == etag
