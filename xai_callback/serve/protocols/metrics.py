"""Prometheus exposition at `/metrics` (see `xai_callback.serve.metrics` for what is measured).

Behind the bearer token when the server has one (Prometheus sends it with
`authorization: {credentials: ...}`); absent with `--no-metrics`.
"""

from starlette.responses import Response

from xai_callback.serve.protocols.tf_serving import error_body
from xai_callback.serve.routing import PatternRoute, ProtocolApp

NAME = "metrics"
PREFIX = "/metrics"


def protocol(service):
    async def exposition(request):
        body, content_type = service.metrics.exposition()
        return Response(body, media_type=content_type)

    return ProtocolApp(NAME, [PatternRoute(r"^/?$", exposition, ["GET"])], error_body,
                       token=service.options.bearer_token)
