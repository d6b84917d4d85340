"""HTTP JSON sink: batches for Splunk's HTTP Event Collector or Elasticsearch's bulk API.

Splunk HEC: POST {url}/services/collector/event, `Authorization: Splunk TOKEN`, the batch as
event objects one after another (newline-separated), each
    {"time": TS, "host": H, "source": "egress", "sourcetype": …, ["index": …,] "event": DOC}
acknowledged by 200 with `{"code": 0}`.

Elastic bulk: POST {url}/_bulk, `Content-Type: application/x-ndjson`, per record an action line
`{"index": {"_index": …, "_id": HASH}}` and the document line DOC plus `@timestamp`. The answer
is 200 even when items failed: `errors: true` and each item's status say which; any failed item
fails the batch, which is sent again whole. The `_id` is the record's hash, so the items that
succeeded the first time are overwritten with the same document, not duplicated.

DOC is the chain document (egress/siem/document.py): hash, prev_hash, record, seq."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

import orjson

from egress.core.records import StoredAudit
from egress.siem.document import chain_document, rfc3339
from egress.siem.http_client import HttpPoster
from egress.siem.settings import HttpFormat, HttpSink
from egress.siem.sink import SinkError

ELASTIC_DEFAULT_INDEX = "egress-audit"


class HttpJsonSink:
    def __init__(self, settings: HttpSink, env: dict[str, str] | None = None) -> None:
        self.name = settings.name
        self._format = settings.format
        environ = env if env is not None else os.environ
        token = environ.get(settings.token_env) if settings.token_env else None
        if settings.token_env and not token:
            raise ValueError(f"siem sink {settings.name}: environment variable {settings.token_env} is not set")
        self._headers: dict[str, str] = {}
        if self._format == HttpFormat.SPLUNK_HEC:
            self._url = settings.url + "/services/collector/event"
            self._headers["Content-Type"] = "application/json"
            if token:
                self._headers["Authorization"] = f"Splunk {token}"
            meta = {"host": socket.gethostname(), "source": "egress", "sourcetype": settings.sourcetype}
            if settings.index:
                meta["index"] = settings.index
            # Every event's fields but time and event, serialised once: `"host":…,"source":…,`.
            self._hec_meta = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS)[1:-1] + b","
        else:
            self._url = settings.url + "/_bulk"
            self._headers["Content-Type"] = "application/x-ndjson"
            if token:
                self._headers["Authorization"] = f"ApiKey {token}"
            index = settings.index or ELASTIC_DEFAULT_INDEX
            self._index = orjson.dumps(index)
        self._poster = HttpPoster(
            settings.name,
            settings.ca_file,
            settings.delivery.timeout_s,
            settings.client_cert_file,
            settings.client_key_file,
        )

    def encode(self, batch: Sequence[StoredAudit]) -> bytes:
        if self._format == HttpFormat.SPLUNK_HEC:
            meta = self._hec_meta
            return b"\n".join(b'{%s"event":%s,"time":%.6f}' % (meta, chain_document(s), s.entry.ts) for s in batch)
        index = self._index
        lines = []
        for s in batch:
            lines.append(b'{"index":{"_index":%s,"_id":"%s"}}' % (index, s.hash.encode("ascii")))
            doc = chain_document(s)
            lines.append(b'{"@timestamp":"%s",%s' % (rfc3339(s.entry.ts).encode("ascii"), doc[1:]))
        lines.append(b"")
        return b"\n".join(lines)

    async def send(self, payload: bytes, count: int) -> None:
        status, body = await self._poster.post(self._url, payload, self._headers)
        if self._format == HttpFormat.SPLUNK_HEC:
            _check_hec(self.name, status, body)
        else:
            _check_bulk(self.name, status, body, count)

    async def close(self) -> None:
        await self._poster.close()


def _json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _check_hec(sink: str, status: int, body: bytes) -> None:
    doc = _json(body)
    code = doc.get("code") if isinstance(doc, dict) else None
    if status != 200 or code != 0:
        text = doc.get("text") if isinstance(doc, dict) else None
        raise SinkError(f"{sink}: HEC answered {status} (code {code!r}: {text!r})")


def _check_bulk(sink: str, status: int, body: bytes, count: int) -> None:
    doc = _json(body)
    if status != 200 or not isinstance(doc, dict):
        raise SinkError(f"{sink}: bulk answered {status}")
    items = doc.get("items")
    if not isinstance(items, list) or len(items) != count:
        raise SinkError(f"{sink}: bulk answered {len(items) if isinstance(items, list) else 'no'} items for {count}")
    failed = [_item_error(item) for item in items]
    errors = [e for e in failed if e is not None]
    if errors:
        raise SinkError(f"{sink}: bulk refused {len(errors)} of {count} items (first: {errors[0]})")


def _item_error(item: object) -> str | None:
    """None when the item was stored (2xx), else its status and error type."""
    if not isinstance(item, dict) or len(item) != 1:
        return "malformed item"
    (result,) = item.values()
    if not isinstance(result, dict):
        return "malformed item"
    status = result.get("status")
    if isinstance(status, int) and 200 <= status < 300:
        return None
    error = result.get("error")
    kind = error.get("type") if isinstance(error, dict) else error
    return f"{status} {kind}"
