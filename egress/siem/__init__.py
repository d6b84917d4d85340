"""Audit delivery to SIEMs, at least once, from the chain (docs/siem.md).

settings.py     siem.sinks: syslog, http (Splunk HEC, Elastic bulk), otlp; delivery bounds
delivery.py     one task per sink: lease, read after the cursor, send, advance on acknowledgement
document.py     what each record carries: seq, hash, prev_hash, the canonical record verbatim
syslog.py       RFC 5424 over TCP/TLS, octet-counted (RFC 6587)
http_json.py    Splunk HEC and Elastic bulk batches, per-item errors checked
otlp.py         OTLP/HTTP protobuf logs
copy.py         verify a SIEM's copy against the signed checkpoints
metrics.py      delivered, failed attempts, lag in records and seconds, retry delay
"""
