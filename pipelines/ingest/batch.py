"""Reading one ingest request body into per-sample results. Pure (no I/O).

A body is one sample object, a JSON array of samples, or a ``netquality.stats.batch.v1``
envelope. Each element is decoded on its own with the project's decoder, so one bad sample
costs only itself; only a body that is not JSON at all, or not one of the three shapes, is
refused whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from pipelines.clients.envelope import BATCH_SCHEMA
from pipelines.contracts import ContractError, StatsSample, decode_stats


class BodyError(ValueError):
    """The request as a whole is unusable; ``status`` is the HTTP answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class SampleResult:
    """One element of the request: the decoded sample, or why it was refused."""

    index: int
    raw: bytes
    sample: StatsSample | None = None
    code: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.sample is not None


_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_array = msgspec.json.Decoder(list[msgspec.Raw])


def split_body(body: bytes, max_samples: int) -> list[bytes]:
    """The raw JSON of each sample in the body, in order; raises :class:`BodyError`."""
    text = body.lstrip()
    try:
        if text[:1] == b"[":
            elements = _array.decode(body)
        elif text[:1] == b"{":
            fields = _object.decode(body)
            schema = fields.get("schema")
            if schema is not None and msgspec.json.decode(schema) == BATCH_SCHEMA:
                samples = fields.get("samples")
                if samples is None:
                    raise BodyError(422, "invalid_field", "an envelope needs a `samples` array")
                elements = _array.decode(samples)
            else:
                elements = [msgspec.Raw(body)]
        else:
            raise BodyError(
                422, "invalid_json", "the body must be a JSON object (one sample or an "
                "envelope) or an array of samples"
            )
    except msgspec.ValidationError as exc:
        raise BodyError(422, "invalid_field", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise BodyError(422, "invalid_json", str(exc)) from None
    if not elements:
        raise BodyError(422, "empty", "no samples in the request")
    if len(elements) > max_samples:
        raise BodyError(
            413, "too_many_samples",
            f"{len(elements)} samples in one request; the limit is {max_samples}",
        )
    return [bytes(e) for e in elements]


def check_samples(elements: list[bytes]) -> list[SampleResult]:
    """Decode each element with the contract's decoder."""
    results: list[SampleResult] = []
    for index, raw in enumerate(elements):
        try:
            results.append(SampleResult(index, raw, sample=decode_stats(raw)))
        except ContractError as exc:
            results.append(SampleResult(index, raw, code=exc.code, message=exc.message))
    return results
