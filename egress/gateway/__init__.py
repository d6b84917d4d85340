"""The gateway: the HTTP front door and the stage order every API request goes through.

    asgi.py           the ASGI app: routes on the path, answers the local endpoints
    pipeline.py       the stage order, top to bottom, and the one boundary around forward
    stage.py          the fail-closed boundary of a stage (StageBoundary, run_stage)
    body.py           the request body: JSON only, within the size and time limits
    auth.py           who is asking: a gateway key or an OIDC token; clients.py: which agent
    offload.py        where parse, inspect and mask run: inline, a worker thread or process
                      (worker_pool.py; a large body crosses in body_file.py)
    decide.py         the policy's question and what its answer lets through
    session.py        a conversation's placeholders between requests (vault and ledger)
    approval_gate.py  a request that needs an approver: held or refused
    router.py         candidate endpoints, failover among the allowed ones, the upstream request
    write_ahead.py    each attempt's egress record, committed before its first byte leaves
    relay.py          the answer back: whole or streamed, translated, restored
    disconnect.py     a client that hangs up cancels its request
    responder.py      one HTTP response; before its first byte an error is a status
    http_protocol.py  the HTTP/1.1 server protocol with a deadline for headers
    settings.py       the configuration's server: and auth: sections
"""
