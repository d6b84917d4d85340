"""Indexed code in a body inspected by a worker process (gateway/worker_pool.py): the worker
builds its own view of the code index (egress.app.build_worker_stages), polling the store."""

from __future__ import annotations

from tests.integration.test_code_provenance import (  # noqa: F401 - fixtures
    audit_records,
    claude_code_request,
    clouds,
    renamed_excerpt,
    repo,
    serving,
)
from tests.integration.test_serve_cli import env  # noqa: F401 - a fixture


def test_a_body_inspected_in_a_worker_process_is_recognised_too(env, tmp_path, repo, clouds) -> None:  # noqa: F811
    # From 1 KB on, bodies are parsed and inspected in worker processes: their own code index.
    with serving(env, tmp_path, repo, clouds, detection={"process_min_kb": 1}) as (url, key, config):
        padding = "\n".join(f"note {i}: nothing to see here" for i in range(60))
        assert claude_code_request(url, key, padding + "\n" + renamed_excerpt(42, 20), stream=True)
        assert clouds["us"].received == [] and len(clouds["own"].received) == 1
        (record,) = audit_records(config)
        assert record["findings"]["rules"] == {"proprietary-code:billing": 1}
