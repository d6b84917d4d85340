"""Observability: Prometheus metrics, OpenTelemetry traces and structured logs
(docs/observability.md).

    settings.py     metrics:, tracing:, logging:, organisation: (home_jurisdictions)
    telemetry.py    what the pipeline calls: begin (stage marks) and end (count, trace, log)
    request.py      a request's stage timings (the stage boundary marks them)
    metrics.py      the metric families, counted from each request's audit record
    sampler.py      gauges sampled in the background (breakers, audit queue, checkpoint age)
    exposition.py   GET /metrics: bearer token, multiprocess collection, the separate listener
    multiproc.py    PROMETHEUS_MULTIPROC_DIR for `egress serve --workers N`
    tracing.py      spans over OTLP/HTTP, GenAI semantic conventions
    logs.py         text or JSON lines; the optional access log
"""
