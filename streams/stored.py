"""Customer records as the state table stores them: JSON bytes (orjson).

>>> from churnstream.models.scoring import CustomerRecord
>>> decode_record(encode_record(CustomerRecord.new("c1"))).customer_id
'c1'
>>> for raw in (b"{not json", b'{"customer_id": "c1"}'):
...     try:
...         decode_record(raw)
...     except UnreadableRecord as exc:
...         print(exc)
JSONDecodeError('unexpected character, expected a string key: line 1 column 2 (char 1)')
KeyError('features')
"""

from __future__ import annotations

import orjson

from churnstream.models.scoring import CustomerRecord


class UnreadableRecord(ValueError):
    """Stored bytes that are not a customer record (corrupt, or another program's)."""


def encode_record(record: CustomerRecord) -> bytes:
    return orjson.dumps(record.to_dict())


def decode_record(raw: bytes) -> CustomerRecord:
    try:
        return CustomerRecord.from_dict(orjson.loads(raw))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnreadableRecord(repr(exc)) from exc
