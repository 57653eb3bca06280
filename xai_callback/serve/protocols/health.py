"""Liveness and readiness: `/healthz`, `/`, `/readyz`, Vertex's `AIP_HEALTH_ROUTE` and V2's `/v2/health/*`.

Open routes (no bearer token): probes do not carry one. Readiness is the
service's (`Service.not_ready`): with `--workers N`, every worker has a version
loaded.
"""

from starlette.routing import Route

from xai_callback.serve.errors import ServeError
from xai_callback.serve.options import HEALTH_ROUTE, READY_ROUTE
from xai_callback.serve.routing import json_endpoint

NAME = "health"


def routes(service):
    ready = json_endpoint(service, NAME, "ready", _ready)
    alive = json_endpoint(service, NAME, "alive", _alive)
    found = [Route(HEALTH_ROUTE, alive, methods=["GET"]), Route(READY_ROUTE, ready, methods=["GET"]),
             Route("/", alive, methods=["GET"]),
             # The Open Inference Protocol's (V2) health routes: "4xx" means false.
             Route("/v2/health/live", json_endpoint(service, NAME, "live", _v2_live), methods=["GET"]),
             Route("/v2/health/ready", json_endpoint(service, NAME, "ready", _v2_ready), methods=["GET"])]
    if service.options.health_route:
        found.insert(0, Route(service.options.health_route, ready, methods=["GET"]))
    return found


async def _alive(service, request):
    return {"status": "alive"}


async def _ready(service, request):
    problem = service.not_ready()
    if problem:
        raise ServeError(503, f"Not ready: {problem}.")
    current = service.repository.current
    return {"status": "ready", "model": service.repository.name, "version": current.version,
            **service.workers_status()}


async def _v2_live(service, request):
    return {"live": True}


async def _v2_ready(service, request):
    problem = service.not_ready()
    if problem:
        raise ServeError(400, f"Not ready: {problem}.")
    return {"ready": True}
