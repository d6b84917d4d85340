"""The web console at /admin: server-rendered pages over the audit, approvals, recordings, the
provider catalog and the active policy, for admins and team leads."""
