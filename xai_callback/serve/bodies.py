"""Reading request bodies (size-limited, time-limited, hostile JSON refused), writing JSON responses.

JSON goes through `orjson` when it is installed (the `[serve]` extra brings
it; 10-20x faster than the standard library on request-sized documents) and
through `json` otherwise, or whenever orjson would answer differently: it
refuses TF Serving's `NaN` / `Infinity` tokens and writes non-finite floats
as `null`, so those bodies, and any orjson error, take the standard library,
whose results and messages are the reference.
"""

import asyncio
import json

try:
    import orjson
except ImportError:  # optional: the standard library does the same, slower
    orjson = None

from starlette.responses import Response

from xai_callback.serve.codec import BOOLEANS_KEY
from xai_callback.serve.errors import ServeError

_TIMEOUT = getattr(asyncio, "timeout", None)  # cheaper than wait_for's task, from Python 3.11


async def read_json(request, limit, timeout=None):
    """The request's JSON body; 413 past `limit` bytes (checked before and while reading),
    408 when it has not all arrived within `timeout` seconds (a trickling client).

    JSON over HTTP is UTF-8 (RFC 8259): other encodings (UTF-16, a BOM) are
    refused, as are documents nested deeper than the parsers go. A body with
    a JSON true/false marks the request (`codec.booleans_in`): booleans feed
    only bool inputs, never numbers.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(f"{int(declared)} bytes", limit)
    try:
        if _TIMEOUT is None:  # Python < 3.11
            body = await asyncio.wait_for(_read(request, limit), timeout)
        else:
            async with _TIMEOUT(timeout):
                body = await _read(request, limit)
    except (TimeoutError, asyncio.TimeoutError):
        raise ServeError(408, f"The request body did not arrive within {timeout:g} s "
                              "(--body-timeout-seconds).") from None
    if not body.strip():
        raise ServeError(400, "The request body is empty; send a JSON object.")
    if b"true" in body or b"false" in body:
        request.scope[BOOLEANS_KEY] = True
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # NaN tokens, or not JSON: the standard library reads or words it
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ServeError(400, f"The request body is not UTF-8 ({e.reason} at byte {e.start}); JSON "
                              "over HTTP is UTF-8 (RFC 8259).") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ServeError(400, f"The request body is not valid JSON: {e}.") from e
    except RecursionError:
        raise ServeError(400, "The request body nests JSON lists or objects too deeply to read; "
                              "instances take one list level per dimension.") from None


async def _read(request, limit):
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(f"more than {limit} bytes", limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size, limit):
    return ServeError(413, f"The request body is {size}; this server takes at most {limit} bytes "
                           "(--max-body-bytes). Send fewer instances per request.")


def json_response(content, status=200, headers=None):
    """JSON with TF Serving's number conventions (`NaN`, `Infinity` tokens)."""
    return Response(dumps(content), status_code=status, headers=headers,
                    media_type="application/json")


def dumps(content):
    """`content` as compact JSON bytes, non-finite floats as `NaN` / `Infinity`."""
    if orjson is not None:
        try:
            data = orjson.dumps(content)
        except TypeError:  # e.g. non-string keys, integers past 64 bits
            data = None
        # orjson writes NaN and Infinity as null: a body holding null is
        # written again by the standard library (null stays null there).
        if data is not None and b"null" not in data:
            return data
    return json.dumps(content, separators=(",", ":")).encode()
