"""The console's ASGI application (Starlette), mounted by the gateway under /admin.

Every page is server-rendered and works with JavaScript off; htmx (a same-origin static file)
only refreshes the live lists. Authorization is enforced here, in each handler and query: an
admin sees everything, a team lead only their team's records, approvals, flows and replays, and
decides only their team's approvals. Something a viewer may not see answers 404, as if it did
not exist.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import jinja2
import orjson
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from egress.admin import records, reports
from egress.admin.accounts import Passwords, Role, Viewer
from egress.admin.flowgraph import layout
from egress.admin.guard import same_origin, security_headers, tls, token_matches
from egress.admin.indexed_code import indexed_code_report
from egress.admin.oidc import LOGIN_COOKIE, LOGIN_TTL_S, ConsoleOidc, SignInRefused
from egress.admin.records import QueryError, Search
from egress.admin.reports import FORMATS, console_context
from egress.admin.saml import SAML_COOKIE, SAML_LOGIN_TTL_S, ConsoleSaml
from egress.admin.sessions import COOKIE, SessionBook, viewer_of
from egress.admin.settings import ConsoleSettings
from egress.admin.throttle import LoginThrottle, Throttle
from egress.admin.usage import usage_page
from egress.approve.service import ApprovalError, Approvals
from egress.checklist.providers import build_report, destinations, policy_fits
from egress.core.approvals import Approval, ApprovalStatus
from egress.core.endpoint import Endpoint
from egress.core.exchange import Api
from egress.core.records import ConsoleSession
from egress.limits.settings import LimitsSettings
from egress.policy.service import PolicyService
from egress.policy.settings import PolicyEngineKind
from egress.recording.recordings import Recordings
from egress.route.provider_catalog import ProviderCatalog
from egress.shared.throttle import SharedFailures
from egress.store.base import SqlStore
from egress.wire.apis import answer_text

log = logging.getLogger("egress.admin")

PREFIX = "/admin"
LOGIN_CSRF_COOKIE = "egress_login_csrf"


@dataclass(frozen=True, slots=True)
class PolicyView:
    """What the policy page shows besides the running revision."""

    engine: PolicyEngineKind
    query: str
    shadow: bool
    data: dict[str, Any]
    opa_url: str | None
    sources: Callable[[], tuple[tuple[str, str], ...]]  # (file, text) of the policy as on disk now


@dataclass(frozen=True, slots=True)
class Signed:
    viewer: Viewer
    session: ConsoleSession


Handler = Callable[[Request, Signed], Awaitable[Response]]


class Console:
    def __init__(
        self,
        *,
        store: SqlStore,
        settings: ConsoleSettings,
        public_url: str | None,  # server.public_url: the origin a form must come from, when set
        policy: PolicyService,
        policy_view: PolicyView,
        provider_catalog: ProviderCatalog,
        endpoints: tuple[Endpoint, ...],
        approvals: Approvals | None,
        recordings: Recordings | None,
        passwords: Passwords | None = None,
        oidc: ConsoleOidc | None = None,
        saml: ConsoleSaml | None = None,
        shared_throttle: SharedFailures | None = None,
        limits: LimitsSettings | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.public_url = public_url
        self.policy = policy
        self.policy_view = policy_view
        self.provider_catalog = provider_catalog
        self.endpoints = endpoints
        self.approvals = approvals
        self.recordings = recordings
        self.oidc = oidc
        self.saml = saml
        self.limits = limits or LimitsSettings()  # the Usage page sets usage against these
        self.passwords = passwords or Passwords()
        self.sessions = SessionBook(store, settings.session_ttl_s)
        # Failed sign-ins: counted across replicas with Redis (shared_throttle), else per process.
        self.throttle = Throttle(LoginThrottle(settings.login_max_failures, settings.login_window_s), shared_throttle)
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("egress.admin", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["iso"] = _iso
        self.templates.filters["kinds"] = _kinds
        self.app = Starlette(routes=self._routes())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(k.encode(), v.encode()) for k, v in security_headers(scope.get("scheme") == "https").items()]

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _routes(self) -> list[Any]:
        p = PREFIX
        return [
            Route(p, self._home),
            Route(p + "/", self._home),
            Route(p + "/login", self._login_page, methods=["GET"]),
            Route(p + "/login", self._login, methods=["POST"]),
            Route(p + "/login/oidc", self._oidc_begin, methods=["GET"]),
            Route(p + "/oidc/callback", self._oidc_callback, methods=["GET"]),
            Route(p + "/saml/metadata", self._saml_metadata, methods=["GET"]),
            Route(p + "/login/saml", self._saml_begin, methods=["GET"]),
            Route(p + "/saml/acs", self._saml_acs, methods=["POST"]),
            Route(p + "/logout", self._signed(self._logout), methods=["POST"]),
            Route(p + "/traffic", self._signed(self._traffic)),
            Route(p + "/traffic/rows", self._signed(self._traffic_rows)),
            Route(p + "/approvals", self._signed(self._approvals)),
            Route(p + "/approvals/rows", self._signed(self._approval_rows)),
            Route(p + "/approvals/{approval_id}", self._signed(self._approval)),
            Route(p + "/approvals/{approval_id}/decide", self._signed(self._decide), methods=["POST"]),
            Route(p + "/audit", self._signed(self._audit)),
            Route(p + "/audit/{request_id}", self._signed(self._record)),
            Route(p + "/replay/{request_id}", self._signed(self._replay)),
            Route(p + "/flow", self._signed(self._flow)),
            Route(p + "/reports", self._signed(self._admin_only(self._reports))),
            Route(p + "/reports/download", self._signed(self._admin_only(self._report_download))),
            Route(p + "/providers", self._signed(self._providers)),
            Route(p + "/usage", self._signed(self._usage)),
            Route(p + "/policy", self._signed(self._admin_only(self._policy))),
            Route(p + "/code", self._signed(self._admin_only(self._indexed_code))),
            Mount(p + "/static", StaticFiles(packages=[("egress.admin", "static")]), name="static"),
        ]

    # --- rendering --------------------------------------------------------------------------

    def _render(self, name: str, status: int = 200, signed: Signed | None = None, **context: Any) -> HTMLResponse:
        body = self.templates.get_template(name).render(
            viewer=signed.viewer if signed else None,
            csrf=signed.session.csrf if signed else "",
            refresh_s=self.settings.refresh_s,
            prefix=PREFIX,
            **context,
        )
        return HTMLResponse(body, status_code=status)

    def _error(self, status: int, message: str, signed: Signed | None = None) -> HTMLResponse:
        return self._render("error.html", status=status, signed=signed, status_code=status, message=message)

    # --- sign-in ----------------------------------------------------------------------------

    def _signed(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = await asyncio.to_thread(self.sessions.find, request.cookies.get(COOKIE, ""))
            if session is None:
                if request.method != "GET":
                    return self._error(403, "your session has ended: sign in again")
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"{PREFIX}/login?next={_quote(target)}", status_code=303)
            signed = Signed(viewer_of(session), session)
            if request.method == "POST":
                form = await request.form()
                if not same_origin(request, self.public_url):
                    return self._error(403, "refused: the form was not sent from this console (Origin/Referer)", signed)
                if not token_matches(session.csrf, form.get("csrf")):
                    return self._error(
                        403, "refused: the form's CSRF token is missing or wrong; reload the page", signed
                    )
            return await handler(request, signed)

        return endpoint

    def _admin_only(self, handler: Handler) -> Handler:
        async def endpoint(request: Request, signed: Signed) -> Response:
            if not signed.viewer.is_admin:
                return self._error(403, "only an admin may open this page", signed)
            return await handler(request, signed)

        return endpoint

    async def _home(self, request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/traffic", status_code=303)

    async def _login_page(self, request: Request) -> Response:
        return self._login_form(request, status=200, message="")

    def _login_form(
        self, request: Request, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or _new_token()
        response = self._render(
            "login.html",
            status=status,
            login_csrf=token,
            message=message,
            next=_safe_next(request.query_params.get("next")),
            oidc=self.oidc is not None,
            saml=self.saml is not None,
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE, token, max_age=3600, path=PREFIX, httponly=True, samesite="strict", secure=tls(request)
        )
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response

    async def _login(self, request: Request) -> Response:
        form = await request.form()
        if not same_origin(request, self.public_url):
            return self._error(403, "refused: the sign-in form was not sent from this console (Origin/Referer)")
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not token_matches(expected, form.get("csrf")):
            return self._error(403, "refused: the sign-in form's CSRF token is missing or wrong; reload the page")
        name = _field(form, "username")
        password = str(form.get("password") or "")
        keys = (f"user:{name.lower()}", f"addr:{request.client.host if request.client else '?'}")
        wait = await self.throttle.retry_after(keys)
        if wait is not None:
            message = f"too many failed sign-ins: try again in {int(wait) + 1} s"
            return self._login_form(request, 429, message, {"retry-after": str(int(wait) + 1)})
        user = await asyncio.to_thread(self.store.console_user, name) if name else None
        ok = await asyncio.to_thread(self.passwords.check, user.password_hash if user else None, password)
        if user is None or not ok:
            await self.throttle.failed(keys)
            log.info("console sign-in failed for %r", name[:64])
            return self._login_form(request, 401, "wrong account name or password")
        await self.throttle.succeeded(keys[:1])
        viewer = Viewer(user.name, Role(user.role), user.team)
        return await self._start_session(request, viewer, _safe_next(str(form.get("next") or "")))

    async def _oidc_begin(self, request: Request) -> Response:
        if self.oidc is None:
            return self._error(404, "sign-in with an identity provider is not configured")
        try:
            cookie, url = await self.oidc.begin(_safe_next(request.query_params.get("next")))
        except SignInRefused as exc:
            return self._error(502, f"cannot start the sign-in: {exc}")
        response = RedirectResponse(url, status_code=303)
        # Lax: the provider's redirect back is a top-level GET navigation, which carries it.
        response.set_cookie(
            LOGIN_COOKIE,
            cookie,
            max_age=int(LOGIN_TTL_S),
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=tls(request),
        )
        return response

    async def _oidc_callback(self, request: Request) -> Response:
        if self.oidc is None:
            return self._error(404, "sign-in with an identity provider is not configured")
        q = request.query_params
        try:
            viewer, target = await self.oidc.finish(
                request.cookies.get(LOGIN_COOKIE, ""), q.get("state"), q.get("code"), q.get("error")
            )
        except SignInRefused as exc:
            log.info("console OIDC sign-in refused: %s", exc)
            response: Response = self._error(403, f"sign-in refused: {exc}")
            response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
            return response
        response = await self._start_session(request, viewer, target)
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    async def _saml_metadata(self, request: Request) -> Response:
        if self.saml is None:
            return self._error(404, "SAML sign-in is not configured")
        return Response(self.saml.metadata(), media_type="application/samlmetadata+xml")

    async def _saml_begin(self, request: Request) -> Response:
        if self.saml is None:
            return self._error(404, "SAML sign-in is not configured")
        try:
            cookie, url = await self.saml.begin(_safe_next(request.query_params.get("next")))
        except SignInRefused as exc:
            log.warning("console SAML sign-in cannot start: %s", exc)
            return self._error(502, f"cannot start the sign-in: {exc}")
        response = RedirectResponse(url, status_code=303)
        # The IdP answers with a cross-site POST: over https the cookie must be SameSite=None
        # (and Secure) to come along; over http (loopback only) Lax, which same-site posts carry.
        secure = tls(request)
        response.set_cookie(
            SAML_COOKIE,
            cookie,
            max_age=int(SAML_LOGIN_TTL_S),
            path=PREFIX + "/saml",
            httponly=True,
            samesite="none" if secure else "lax",
            secure=secure,
        )
        return response

    async def _saml_acs(self, request: Request) -> Response:
        if self.saml is None:
            return self._error(404, "SAML sign-in is not configured")
        form = await request.form()
        relay_state = form.get("RelayState")
        saml_response = form.get("SAMLResponse")
        try:
            viewer, target = await self.saml.finish(
                request.cookies.get(SAML_COOKIE, ""),
                relay_state if isinstance(relay_state, str) else None,
                saml_response if isinstance(saml_response, str) else None,
            )
        except SignInRefused as exc:
            # The reason only: never the response, the assertion or its attributes.
            log.warning("console SAML sign-in refused: %s", exc)
            response: Response = self._error(403, f"sign-in refused: {exc}")
            response.delete_cookie(SAML_COOKIE, path=PREFIX + "/saml")
            return response
        response = await self._start_session(request, viewer, target)
        response.delete_cookie(SAML_COOKIE, path=PREFIX + "/saml")
        return response

    async def aclose(self) -> None:
        """Release what lives on the event loop (the identity provider's HTTP session)."""
        if self.oidc is not None:
            await self.oidc.aclose()

    async def _start_session(self, request: Request, viewer: Viewer, target: str) -> Response:
        token, _session = await asyncio.to_thread(self.sessions.start, viewer)
        log.info("console sign-in: %s (%s)", viewer.name, viewer.role.value)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(self.settings.session_ttl_s),
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=tls(request),
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
        return response

    async def _logout(self, request: Request, signed: Signed) -> Response:
        await asyncio.to_thread(self.sessions.end, request.cookies.get(COOKIE, ""))
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="lax", secure=tls(request))
        return response

    # --- live traffic -----------------------------------------------------------------------

    async def _traffic(self, request: Request, signed: Signed) -> Response:
        rows = await asyncio.to_thread(records.recent, self.store, signed.viewer, 50)
        return self._render("traffic.html", signed=signed, rows=rows)

    async def _traffic_rows(self, request: Request, signed: Signed) -> Response:
        rows = await asyncio.to_thread(records.recent, self.store, signed.viewer, 50)
        return self._render("traffic_rows.html", signed=signed, rows=rows)

    # --- approvals --------------------------------------------------------------------------

    def _approval_lists(self, viewer: Viewer) -> tuple[list[Approval], list[Approval]]:
        if self.approvals is None:
            return [], []
        pending = self.approvals.pending(team=viewer.scope)
        decided = [a for a in self.approvals.recent(limit=50, team=viewer.scope) if a.status != ApprovalStatus.PENDING]
        # The store filters by team; a team lead never gets an approval without one.
        return [a for a in pending if viewer.sees(a.team)], [a for a in decided if viewer.sees(a.team)]

    async def _approvals(self, request: Request, signed: Signed) -> Response:
        pending, decided = await asyncio.to_thread(self._approval_lists, signed.viewer)
        return self._render(
            "approvals.html", signed=signed, pending=pending, decided=decided, now=time.time(), enabled=self.approvals
        )

    async def _approval_rows(self, request: Request, signed: Signed) -> Response:
        pending, decided = await asyncio.to_thread(self._approval_lists, signed.viewer)
        return self._render("approval_rows.html", signed=signed, pending=pending, decided=decided, now=time.time())

    async def _visible_approval(self, approval_id: str, viewer: Viewer) -> Approval | None:
        if self.approvals is None:
            return None
        approval = await asyncio.to_thread(self.approvals.get, approval_id)
        return approval if approval is not None and viewer.sees(approval.team) else None

    async def _approval(self, request: Request, signed: Signed) -> Response:
        approval = await self._visible_approval(request.path_params["approval_id"], signed.viewer)
        if approval is None:
            return self._error(404, "no such approval", signed)
        return self._render("approval.html", signed=signed, a=approval, now=time.time(), message="")

    async def _decide(self, request: Request, signed: Signed) -> Response:
        approval = await self._visible_approval(request.path_params["approval_id"], signed.viewer)
        if approval is None or self.approvals is None:
            return self._error(404, "no such approval", signed)
        form = await request.form()
        choice = _field(form, "decision")
        note = _field(form, "note")[:500] or None
        if choice not in ("approve", "deny"):
            return self._error(400, "decision must be approve or deny", signed)
        decide = self.approvals.approve if choice == "approve" else self.approvals.deny
        try:
            await asyncio.to_thread(decide, approval.approval_id, signed.viewer.name, note)
        except ApprovalError as exc:
            current = await asyncio.to_thread(self.approvals.get, approval.approval_id) or approval
            return self._render(
                "approval.html", status=409, signed=signed, a=current, now=time.time(), message=str(exc)
            )
        log.info("approval %s: %s by %s", approval.approval_id, choice, signed.viewer.name)
        return RedirectResponse(f"{PREFIX}/approvals/{approval.approval_id}", status_code=303)

    # --- audit ------------------------------------------------------------------------------

    async def _audit(self, request: Request, signed: Signed) -> Response:
        search = Search.of(request.query_params)
        before = _int(request.query_params.get("before"))
        try:
            selector = search.selector(signed.viewer)
        except QueryError as exc:
            return self._render("audit.html", status=400, signed=signed, search=search, page=None, message=str(exc))
        page = await asyncio.to_thread(records.search, self.store, selector, before)
        more = {**search.query(), "before": str(page.next_before)} if page.next_before else None
        return self._render("audit.html", signed=signed, search=search, page=page, message="", more=more)

    async def _record(self, request: Request, signed: Signed) -> Response:
        stored = await asyncio.to_thread(
            records.visible_record, self.store, signed.viewer, request.path_params["request_id"]
        )
        if stored is None:
            return self._error(404, "no such record", signed)
        attempts = await asyncio.to_thread(records.egress_rows, self.store, stored)
        return self._render(
            "record.html",
            signed=signed,
            row=records.row_of(stored),
            body=records.record_json(stored),
            stored=stored,
            attempts=attempts,
        )

    async def _replay(self, request: Request, signed: Signed) -> Response:
        request_id = request.path_params["request_id"]
        stored = await asyncio.to_thread(records.visible_record, self.store, signed.viewer, request_id)
        if stored is None or self.recordings is None:
            return self._error(404, "no such record", signed)
        replay = await asyncio.to_thread(self.recordings.replay, request_id)
        if replay is None:
            return self._error(404, "this request was not recorded", signed)
        return self._render(
            "replay.html",
            signed=signed,
            r=replay,
            sent=_pretty(replay.sent),
            answer=_answer_text(replay.api, replay.received, replay.stream),
            raw=replay.received.decode("utf-8", errors="replace"),
        )

    # --- compliance reports -------------------------------------------------------------------

    async def _reports(self, request: Request, signed: Signed) -> Response:
        q = request.query_params
        return self._reports_page(signed, 200, q.get("since", ""), q.get("until", ""), "")

    def _reports_page(self, signed: Signed, status: int, since: str, until: str, message: str) -> Response:
        return self._render(
            "reports.html", status=status, signed=signed, since=since, until=until, formats=FORMATS, message=message
        )

    async def _report_download(self, request: Request, signed: Signed) -> Response:
        q = request.query_params
        fmt = q.get("format", "json")
        try:
            since = records.parse_time(q.get("since", ""), "from") or 0.0
            until = records.parse_time(q.get("until", ""), "until") or time.time()
            if fmt not in FORMATS:
                raise QueryError(f"format must be one of {', '.join(FORMATS)}")
        except QueryError as exc:
            return self._reports_page(signed, 400, q.get("since", ""), q.get("until", ""), str(exc))
        context = console_context(
            self.endpoints, self.provider_catalog, self.policy_view.data, str(self.policy_view.engine),
            self.approvals is not None,
        )  # fmt: skip
        report = await asyncio.to_thread(reports.generate, self.store, context, since, until)
        got = await asyncio.to_thread(reports.download, report, fmt)
        log.info("compliance report %s..%s (%s) by %s", since, until, fmt, signed.viewer.name)
        disposition = f'attachment; filename="{got.filename}"'
        return Response(got.body, media_type=got.media_type, headers={"Content-Disposition": disposition})

    # --- usage against limits ---------------------------------------------------------------

    async def _usage(self, request: Request, signed: Signed) -> Response:
        q = request.query_params
        page = await asyncio.to_thread(usage_page, self.store, self.limits, q.get("since", ""), q.get("team", ""))
        return self._render("usage.html", status=400 if page.message else 200, signed=signed, page=page)

    # --- data flow --------------------------------------------------------------------------

    async def _flow(self, request: Request, signed: Signed) -> Response:
        params = request.query_params
        search = Search(since=params.get("since", ""), until=params.get("until", ""))
        try:
            since = records.parse_time(search.since, "from")
            until = records.parse_time(search.until, "until")
        except QueryError as exc:
            return self._render("flow.html", status=400, signed=signed, search=search, flow=None, message=str(exc))
        now = time.time()
        since = now - 86400 if since is None else since
        until = now + 1 if until is None else until
        flow = await asyncio.to_thread(records.data_flow, self.store, signed.viewer, since, until)
        return self._render(
            "flow.html",
            signed=signed,
            search=search,
            flow=flow,
            graph=layout(flow),
            since=since,
            until=until,
            message="",
        )

    # --- providers and policy ---------------------------------------------------------------

    async def _providers(self, request: Request, signed: Signed) -> Response:
        engine = self.policy.engine  # the running policy, as the gateway asks it
        fits = await policy_fits(engine, destinations(self.provider_catalog, self.endpoints))
        report = build_report(self.provider_catalog, self.endpoints, fits)
        return self._render("providers.html", signed=signed, report=report, revision=engine.revision)

    async def _indexed_code(self, request: Request, signed: Signed) -> Response:
        try:
            days = int(request.query_params.get("days", "7"))
        except ValueError:
            days = 7
        days = min(max(days, 1), 366)
        report = await asyncio.to_thread(indexed_code_report, self.store, time.time() - days * 86400.0)
        return self._render("indexed_code.html", signed=signed, report=report, days=days)

    async def _policy(self, request: Request, signed: Signed) -> Response:
        view = self.policy_view
        try:
            sources = await asyncio.to_thread(view.sources)
            problem = ""
        except Exception as exc:  # noqa: BLE001 - a policy file unreadable now is shown, not fatal to the page
            sources, problem = (), str(exc)
        return self._render(
            "policy.html",
            signed=signed,
            view=view,
            revision=self.policy.revision,
            sources=sources,
            problem=problem,
            data=orjson.dumps(view.data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode(),
        )


# --- helpers ---------------------------------------------------------------------------------


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _quote(path: str) -> str:
    return path.replace("%", "%25").replace("&", "%26").replace("#", "%23").replace("?", "%3F")


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never another site (an open redirect)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/traffic"


def _iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _kinds(kinds: dict[str, int] | None) -> str:
    return ", ".join(f"{k} ×{n}" for k, n in sorted((kinds or {}).items()))


def _pretty(body: bytes) -> str:
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")


def _answer_text(api: str | None, received: bytes, stream: bool) -> str:
    try:
        wire = Api(api) if api else None
    except ValueError:
        wire = None
    return answer_text(wire, received, stream) if wire is not None else ""
