"""The protocols `xai-callback serve` speaks, one module and one mount each.

Each module has `protocol(service) -> ProtocolApp` (its routes, its error body,
whether the bearer token is needed) and its prefix; `xai_callback.serve.app`
mounts them. A new protocol is a new module here, one line in `app.build_app`
and its test.

- `tf_serving`: TF Serving's REST API under `/v1/models` (predict, status, metadata);
- `kserve_v1`: KServe's V1 protocol, sharing `/v1/models` (explain, model list, model ready);
- `vertex`: Vertex AI's `:predict` / `:explain` under `/v1/projects`, `/v1beta1/projects`;
- `v2`: the Open Inference Protocol (KServe V2, Triton, Seldon) under `/v2`;
- `metrics`: Prometheus exposition at `/metrics`;
- `health`: liveness and readiness at the root.
"""
