"""`xai-callback serve`: predictions and explanations over HTTP, as TF Serving, KServe and Vertex AI answer them.

Needs the `[serve]` extra (uvicorn, Starlette); the rest of the package never
imports it, and this package imports it only when its app or server is used
(`options` stays importable without it, for the command line).

Example:

```python
from xai_callback.serve import ServeOptions, serve

serve(ServeOptions("exports/churn", port=8080))   # until SIGTERM
```
"""

from xai_callback.imports import lazy_exports

_EXPORTS = {
    "ModelRepository": "xai_callback.serve.repository",
    "ServedModel": "xai_callback.serve.loader",
    "ServeOptions": "xai_callback.serve.options",
    "Service": "xai_callback.serve.app",
    "build_app": "xai_callback.serve.app",
    "serve": "xai_callback.serve.server",
    "vertex_environment": "xai_callback.serve.options",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
