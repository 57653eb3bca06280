"""Reading request bodies (size-limited JSON), writing JSON responses, the bearer token.

JSON goes through `orjson` when it is installed (the `[serve]` extra brings
it; 10-20x faster than the standard library on request-sized documents) and
through `json` otherwise, or whenever orjson would answer differently: it
refuses TF Serving's `NaN` / `Infinity` tokens and writes non-finite floats
as `null`, so those bodies, and any orjson error, take the standard library,
whose results and messages are the reference.
"""

import hmac
import json

try:
    import orjson
except ImportError:  # optional: the standard library does the same, slower
    orjson = None

from starlette.responses import Response

from xai_callback.serve.errors import ServeError


async def read_json(request, limit):
    """The request's JSON body; 413 past `limit` bytes (checked before and while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(f"{int(declared)} bytes", limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(f"more than {limit} bytes", limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise ServeError(400, "The request body is empty; send a JSON object.")
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # NaN tokens, or not JSON: the standard library reads or words it
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ServeError(400, f"The request body is not valid JSON: {e}.") from e


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


def check_bearer(request, token):
    """Raises 401 unless the request carries `Authorization: Bearer <token>`."""
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ServeError(401, "This server needs 'Authorization: Bearer <token>' with the token "
                              "it was started with.", headers={"WWW-Authenticate": "Bearer"})
