"""Composition root: builds the gateway from a validated `Config`. No other module wires parts."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import signal
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from egress.admin.console import Console, PolicyView
from egress.admin.oidc import ConsoleOidc, RoleMapping
from egress.admin.saml import ConsoleSaml
from egress.approve.desk import ApprovalDesk
from egress.approve.notify import Notifier
from egress.approve.service import Approvals
from egress.audit.anchor import FileAnchor
from egress.audit.approval_steps import ChainJournal, WriterJournal
from egress.audit.checkpoint import Signer, load_or_create_signing_key
from egress.audit.writer import AuditWriter
from egress.config import Config, load_config
from egress.core.approvals import ApprovalStatus
from egress.core.health import Check, Readiness, describe
from egress.detect.compiled_cache import FileBlobCache
from egress.detect.engine import RuleMatcher
from egress.detect.internal import internal_rules
from egress.detect.rules import RuleSet, load_rule_files
from egress.detect.scan import Scanner, TextScanner
from egress.gateway.approval_gate import ApprovalGate
from egress.gateway.asgi import GatewayApp
from egress.gateway.auth import KeyRing, OidcAuth
from egress.gateway.http_protocol import with_header_timeout
from egress.gateway.pipeline import Limits, Pipeline
from egress.gateway.worker_pool import WorkerStages
from egress.identity.oidc import OidcVerifier
from egress.identity.oidc_login import LoginClient, OidcLogin
from egress.identity.plans import CredentialClassifier, bundled_plans
from egress.identity.token_cache import VerifiedTokenCache
from egress.limits.metrics import LimitMetrics
from egress.limits.prices import PriceBook
from egress.limits.quota import Quota
from egress.limits.usage_log import UsageLog
from egress.mask.ledger import SessionLedger
from egress.mask.masker import Masker
from egress.mask.placeholders import MaskingKeys, Placeholders, load_or_create_master_key
from egress.mask.restore import Restorer
from egress.mask.vault import SessionVault
from egress.policy.decide import AllowServingEndpoints, PolicyEngine
from egress.policy.health import OpaProbe
from egress.policy.rego import PolicyLoadError, RegoPolicy, RegoSource
from egress.policy.remote import RemoteOpa
from egress.policy.service import PolicyService
from egress.policy.settings import PolicyEngineKind
from egress.provenance.live import LiveIndex
from egress.recording.keys import load_or_create_recording_keys
from egress.recording.recordings import Recordings
from egress.recording.writer import RecordingWriter
from egress.route.catalog import Catalog
from egress.route.health import EndpointHealth
from egress.route.upstream import UpstreamClient
from egress.shared.approvals import ApprovalBroadcast
from egress.shared.breakers import SharedBreakers
from egress.shared.client import HotState
from egress.shared.ledger import SharedLedger
from egress.shared.throttle import SharedFailures
from egress.siem.delivery import SiemDelivery
from egress.siem.metrics import SiemMetrics
from egress.store.base import SqlStore
from egress.store.open import open_migrated
from egress.telemetry.logs import ENV_LOG_LEVEL, configure_logging
from egress.telemetry.sampler import Sampler, Sources
from egress.telemetry.telemetry import Telemetry

log = logging.getLogger("egress")

# Set by `egress serve` for worker processes: the config file (or empty for embedded defaults).
ENV_SERVE_CONFIG = "EGRESS_SERVE_CONFIG"


def open_configured_store(config: Config) -> SqlStore:
    return open_migrated(
        config.store_url,
        config.resolved_data_dir,
        config.store,
    )


def build_matcher(
    config: Config, extra: tuple[tuple[str, str], ...] = (), on_compile: Callable[[], None] | None = None
) -> RuleMatcher:
    """Bundled rules, the configured gitleaks files (and `extra` ones), internal identifiers.
    `on_compile` is called when the compiled automaton is not in the cache (a compile follows)."""
    ruleset = load_rule_files(list(config.rule_files) + list(extra))
    internal = internal_rules(config.detection.internal_identifiers)
    ruleset = RuleSet(rules=ruleset.rules + internal, allowlists=ruleset.allowlists, version=ruleset.version)
    return RuleMatcher(ruleset, FileBlobCache(config.detection.cache_dir, on_compile))


def build_scanner(
    config: Config, on_compile: Callable[[], None] | None = None, code: LiveIndex | None = None
) -> Scanner:
    """The inspect stage; with `code`, each text is also looked up in the code index."""
    if not config.detection.enabled:
        return Scanner()
    text_scanner = TextScanner(
        build_matcher(config, on_compile=on_compile),
        cache_chars=config.detection.cache_mb * 1024 * 1024,
        max_findings=config.detection.max_findings_per_segment,
        code=code.match if code is not None else None,
    )
    if code is not None:
        code.on_change(text_scanner.forget)  # cached results were looked up in the old index
    return Scanner(text_scanner)


# How often a worker process checks whether the code index changed (`egress index`).
CODE_INDEX_POLL_S = 5.0


def build_worker_stages(config: Config) -> WorkerStages:
    """The inspect and mask stages as a worker process builds them for large bodies
    (gateway/worker_pool.py): the same rules and the same masking key as the gateway's."""
    keys = MaskingKeys.derive(load_or_create_master_key(config.masking_key_file))
    # The worker's own view of the code index: without an event loop, its lookups poll the store.
    code = LiveIndex(open_configured_store(config), poll_s=CODE_INDEX_POLL_S)
    return WorkerStages(build_scanner(config, code=code), Masker(Placeholders(keys)))


def build_shared_ledger(config: Config, store: SqlStore, hot: HotState) -> SharedLedger:
    """The session ledger all replicas share (redis.url), sealed under the vault key."""
    keys = MaskingKeys.derive(load_or_create_master_key(config.masking_key_file))
    return SharedLedger(
        hot,
        keys.vault,
        store,
        ttl_s=config.redis.ledger_ttl_s,
        max_values=config.redis.max_ledger_values,
        store_timeout_s=config.masking.vault_timeout_s,
    )


def build_quota(config: Config, store: SqlStore, hot: HotState | None, telemetry: Telemetry) -> Quota | None:
    """Rate limits and budgets (limits:), counted in Redis when configured; None without limits."""
    if not config.limits.configured:
        return None
    prices = PriceBook.of(config.provider_catalog.prices, config.limits.prices)
    registry = telemetry.metrics.registry if telemetry.metrics is not None else None
    usage_log = UsageLog(store, config.limits.flush_interval_s)
    return Quota(config.limits, prices, hot, LimitMetrics(registry), usage_log)


def build_masking(config: Config, store: SqlStore) -> tuple[Masker, SessionVault]:
    """Placeholders and the session vault, both keyed by the tenant's master key."""
    keys = MaskingKeys.derive(load_or_create_master_key(config.masking_key_file))
    vault = SessionVault(
        keys.vault,
        store,
        ttl_s=config.masking.vault_ttl_s,
        timeout_s=config.masking.vault_timeout_s,
    )
    return Masker(Placeholders(keys)), vault


def build_recorder(config: Config, store: SqlStore) -> RecordingWriter:
    """Recorded payloads (record_payload obligation): sealed with the recording keys (the file is
    created at first start), deleted after the retention period."""
    return RecordingWriter(store, load_or_create_recording_keys(config.recording_key_file), config.recording)


def policy_data(config: Config) -> dict[str, Any]:
    """The policy's settings: `policy.data`, with `masking.kinds` as the default kinds to mask."""
    return {"mask_kinds": list(config.masking.kinds), **config.policy.data}


def rego_source(config: Config) -> RegoSource:
    return RegoSource.from_paths(config.policy.files) if config.policy.files else RegoSource.bundled()


def load_policy_engine(config: Config) -> PolicyEngine:
    """The configured engine, compiled. Raises PolicyLoadError when the policy does not load."""
    settings = config.policy
    if settings.engine == PolicyEngineKind.BUILTIN:
        return AllowServingEndpoints(config.masking.kinds)
    if settings.engine == PolicyEngineKind.OPA:
        assert settings.opa_url is not None  # PolicySettings validates this
        return RemoteOpa(settings.opa_url, settings.query.removeprefix("data.").replace(".", "/"), settings.timeout_s)
    return RegoPolicy(rego_source(config), policy_data(config), settings.query)


def build_policy(config: Config) -> PolicyService:
    return PolicyService(
        load_policy_engine(config),
        config.policy,
        baseline=AllowServingEndpoints(config.masking.kinds),
        # A reload reads the policy files again; the rest of the configuration stays as started.
        loader=lambda: load_policy_engine(config),
    )


def build_oidc(config: Config) -> OidcAuth | None:
    """The OIDC verifier for gateway requests, when `auth.oidc` is configured."""
    oidc = config.auth.oidc
    if oidc is None:
        return None
    # A cached token is trusted no longer than the keys that verified it.
    return OidcAuth(OidcVerifier(oidc), VerifiedTokenCache(oidc.token_cache_entries, max_age_s=oidc.jwks_cache_s))


def build_approvals(config: Config, store: SqlStore, writer: AuditWriter | None = None) -> Approvals:
    """Approvals on the shared store. Each step is audited: through the gateway's audit writer,
    or, without one (the CLI), appended to the chain at once."""
    journal = WriterJournal(writer) if writer is not None else ChainJournal(store)
    return Approvals(store, journal, retry_ttl_s=config.approvals.retry_ttl_s)


def build_approval_gate(config: Config, approvals: Approvals) -> ApprovalGate:
    settings = config.approvals
    notifier = (
        Notifier(settings.webhook_url, settings.webhook_format, settings.webhook_timeout_s)
        if settings.webhook_url
        else None
    )
    return ApprovalGate(
        ApprovalDesk(approvals, poll_interval_s=settings.poll_interval_s),
        settings,
        config.public_base_url,
        notifier,
    )


def policy_sources(config: Config) -> tuple[tuple[str, str], ...]:
    """The policy's files as they are on disk now (the console's read-only view)."""
    if config.policy.engine != PolicyEngineKind.REGO:
        return ()
    source = rego_source(config)
    return source.modules + source.tests


def build_console(
    config: Config, store: SqlStore, policy: PolicyService, approvals: Approvals, hot: HotState | None = None
) -> Console:
    return Console(
        store=store,
        settings=config.console,
        public_url=config.server.public_url,
        policy=policy,
        policy_view=PolicyView(
            engine=config.policy.engine,
            query=config.policy.query,
            shadow=config.policy.shadow,
            data=policy_data(config),
            opa_url=config.policy.opa_url,
            sources=lambda: policy_sources(config),
        ),
        provider_catalog=config.provider_catalog,
        endpoints=config.providers,
        approvals=approvals,
        recordings=Recordings(store, load_or_create_recording_keys(config.recording_key_file)),
        oidc=build_console_oidc(config, store),
        saml=build_console_saml(config, store),
        # Failed sign-ins counted across replicas (redis.url); per process without Redis.
        shared_throttle=SharedFailures(hot, config.console.login_max_failures, config.console.login_window_s)
        if hot is not None
        else None,
        limits=config.limits,
    )


def build_console_oidc(config: Config, store: SqlStore) -> ConsoleOidc | None:
    """Console sign-in through the identity provider, when `console.oidc` is configured."""
    settings = config.console.oidc
    if settings is None:
        return None
    verifier = OidcVerifier(settings.verifier_settings())  # built once: the sign-in and its ID token check share it
    client = LoginClient(
        client_id=settings.client_id,
        redirect_uri=settings.redirect_url or f"{config.public_base_url}/admin/oidc/callback",
        client_secret=settings.client_secret.get_secret_value() if settings.client_secret else None,
        scopes=settings.scopes,
    )
    roles = RoleMapping(groups_claim=settings.groups_claim, admin_groups=settings.admin_groups)
    return ConsoleOidc(verifier, OidcLogin(verifier, client), roles, store)


def build_console_saml(config: Config, store: SqlStore) -> ConsoleSaml | None:
    """Console sign-in through a SAML identity provider, when `console.saml` is configured (its
    metadata is read here, once, bounded by metadata_timeout_s)."""
    settings = config.console.saml
    if settings is None:
        return None
    base = config.public_base_url
    # pysaml2 compiles the SAML schemas when imported (~0.7 s): loaded here, only when SAML is
    # configured, so `egress serve` and its workers start without it (the one deliberate
    # import outside a module's head, as egress/cli/lazy.py does for commands).
    service_provider = importlib.import_module("egress.identity.saml_sp").ServiceProvider
    provider = service_provider(
        settings,
        entity_id=settings.sp_entity_id or f"{base}/admin/saml/metadata",
        acs_url=settings.acs_url or f"{base}/admin/saml/acs",
    )
    roles = RoleMapping(groups_claim=settings.groups_attribute, admin_groups=settings.admin_groups)
    return ConsoleSaml(
        provider, roles, store, user_attribute=settings.user_attribute, team_attribute=settings.team_attribute
    )


def build_app(config: Config, on_compile: Callable[[], None] | None = None) -> GatewayApp:
    store = open_configured_store(config)
    masker, vault = build_masking(config, store)
    # Client APIs a Chat Completions endpoint can answer through translation.
    catalog = Catalog(config.providers)
    policy = build_policy(config)
    keyring = KeyRing(store, refresh_s=config.auth.key_refresh_s)
    code_index = LiveIndex(store)  # `egress index`: the organisation's code, refreshed from the store
    oidc = build_oidc(config)
    upstream = UpstreamClient(config.upstream)
    writer = AuditWriter(
        store,
        config.audit,
        Signer(load_or_create_signing_key(config.audit_signing_key_file)),
        # Created now (0600), so from the first start a missing file means a deleted anchor.
        anchors=(FileAnchor(config.audit_checkpoint_log),),
    )
    recorder = build_recorder(config, store)
    # Redis (redis.url): the hot state the replicas share; without it, state stays per process.
    hot = HotState(config.redis) if config.redis.url is not None else None
    shared_ledger = build_shared_ledger(config, store, hot) if hot is not None else None
    health = EndpointHealth()
    # Circuits one replica opens open on all (pub/sub); without Redis each process keeps its own.
    breakers = SharedBreakers(hot, health) if hot is not None else None
    # The console decides on this same object, so a held request here hears of it at once.
    approvals = build_approvals(config, store, writer)
    gate = build_approval_gate(config, approvals)
    # Decisions pushed to every replica's held requests (Redis pub/sub); polling stays the fallback.
    broadcast = ApprovalBroadcast(hot, gate.desk) if hot is not None else None
    # Metrics, traces and the access log (egress/telemetry); off unless configured.
    telemetry = Telemetry.configured(
        config.metrics, config.tracing, config.logging, config.organisation, config.providers
    )
    quota = build_quota(config, store, hot, telemetry)
    pipeline = Pipeline(
        catalog=catalog,
        keyring=keyring,
        oidc=oidc,
        scanner=build_scanner(config, on_compile, code_index),
        policy=policy,
        health=health,
        masker=masker,
        restorer=Restorer(),
        vault=vault,
        ledger=SessionLedger(),
        shared_ledger=shared_ledger,
        upstream=upstream,
        audit=writer,
        recorder=recorder,
        worker_stages=partial(build_worker_stages, config),
        credentials=CredentialClassifier(bundled_plans()),
        cert_accounts=config.auth.client_cert_accounts,
        approvals=gate,
        telemetry=telemetry,
        quota=quota,
        limits=Limits(
            max_body_bytes=config.server.max_body_bytes,
            body_read_timeout_s=config.server.body_read_timeout_s,
            auth_required=config.auth.required,
            client_classifications=frozenset(config.policy.client_classifications),
            inline_body_bytes=config.detection.inline_max_kb * 1024,
            inspect_cpu_budget_s=config.detection.cpu_budget_s,
            process_body_bytes=config.detection.process_min_kb * 1024,
            write_ahead_timeout_s=config.audit.write_ahead_timeout_s,
        ),
    )
    sampler = (
        Sampler(
            telemetry.metrics,
            Sources(
                audit=writer,
                circuits=pipeline.router.health.snapshot,
                endpoints=tuple(e.name for e in config.providers),
                pending_approvals=lambda: len(store.approval_list((ApprovalStatus.PENDING,), None, 100_000)),
            ),
        )
        if telemetry.metrics is not None
        else None
    )
    # Audit delivery to SIEMs (egress/siem): a task per sink, reading the store, never the request path.
    siem = (
        SiemDelivery(
            config.siem,
            store,
            SiemMetrics(telemetry.metrics.registry if telemetry.metrics is not None else None),
        )
        if config.siem.sinks
        else None
    )
    # Remote OPA: probed in the background for readiness (an in-process policy is compiled by now).
    opa_probe = (
        OpaProbe(config.policy.opa_url)
        if config.policy.engine == PolicyEngineKind.OPA and config.policy.opa_url
        else None
    )

    async def startup() -> None:
        writer.start()
        recorder.start()  # deletes expired payloads first, off the event loop
        if hot is not None:
            await hot.start()  # a Redis down now is reported (/readyz, once in the log), not fatal
        if breakers is not None:
            await breakers.start()
        if broadcast is not None:
            await broadcast.start()
        await upstream.start()
        if quota is not None and quota.usage_log is not None:
            await quota.usage_log.start()
        await keyring.start()
        await code_index.start()
        if opa_probe is not None:
            await opa_probe.start()
        if oidc is not None:
            await oidc.start()
        gate.desk.start_sweep()
        if sampler is not None:
            sampler.start()
        if siem is not None:
            siem.start()
        _reload_on_sighup(policy)
        purged = await pipeline.purge_vault()
        if purged:
            log.info("session vault: %d expired entries removed", purged)
        log.info(
            "egress ready: %d provider endpoints, store %s, policy %s",
            len(catalog.endpoints),
            store.dialect,
            policy.revision,
        )

    async def shutdown() -> None:
        if sampler is not None:
            await sampler.stop()
        if siem is not None:
            await siem.stop()  # the cursor is in the store: the next start resumes there
        await keyring.stop()
        await code_index.stop()
        if opa_probe is not None:
            await opa_probe.stop()
        if oidc is not None:
            await oidc.stop()
        await upstream.close()
        await gate.close()
        if quota is not None:
            await quota.drain()  # reconciliations in flight reach Redis before it is closed
            if quota.usage_log is not None:
                await quota.usage_log.stop()  # the last batch of usage rows
        if breakers is not None:
            await breakers.close()
        if broadcast is not None:
            await broadcast.close()
        if hot is not None:
            await hot.close()
        if shared_ledger is not None:
            shared_ledger.close()  # its queued store copies are written first
        if console is not None:
            await console.aclose()
        # Every request that finished has submitted its record; write them all before exiting.
        writer.close()
        recorder.close()
        pipeline.close()
        telemetry.close()  # sends the spans still queued
        await policy.engine.aclose()
        policy.close()
        store.close()
        log.info("egress stopped: %d audit records written", writer.written)

    def checks() -> tuple[Check, ...]:
        """The in-memory checks, kept current by the background loops: cheap, run per request."""
        policy_check = opa_probe.check() if opa_probe is not None else Check("policy", True, f"in-process, {policy.revision}")
        recording = Check(
            "recording", recorder.alive, "running" if recorder.alive else "the recording writer is not running"
        )
        shared = (hot.check(),) if hot is not None else ()
        return (writer.check(config.audit.max_backlog), keyring.check(), policy_check, recording, gate.desk.check(), *shared)

    max_backlog = config.audit.max_backlog

    def not_ready() -> tuple[str, ...]:
        """The same checks as `checks`, as plain flags: this runs before every API request."""
        if (
            writer.healthy(max_backlog)
            and not keyring.stale
            and (opa_probe is None or opa_probe.reachable)
            and recorder.alive
        ):
            return ()
        return tuple(c.name for c in checks() if not c.ok)

    async def ready() -> Readiness:
        try:
            await asyncio.wait_for(asyncio.to_thread(store.ping), config.store.connect_timeout_s)
            store_check = Check("store", True, f"{store.dialect} answers")
        except Exception as exc:  # noqa: BLE001 - any store failure means not ready
            store_check = Check("store", False, f"the {store.dialect} store does not answer", describe(exc))
        return Readiness((*checks(), store_check), audit_backlog=writer.backlog, audit_uncovered=writer.uncovered)

    console = build_console(config, store, policy, approvals, hot) if config.console.enabled else None
    return GatewayApp(
        pipeline,
        catalog,
        on_startup=startup,
        on_shutdown=shutdown,
        ready=ready,
        gate=not_ready,
        admin=console,
        metrics=telemetry.page,
    )


def _reload_on_sighup(policy: PolicyService) -> None:
    """SIGHUP reloads the policy (`egress policy reload` sends it). A policy that does not load
    is reported and the running one stays."""

    def reload() -> None:
        try:
            policy.reload()
        except PolicyLoadError as exc:
            log.error("policy reload failed, keeping revision %s: %s", policy.revision, exc)

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    except (NotImplementedError, RuntimeError, ValueError):
        log.warning("SIGHUP is not available here: reload the policy by restarting")


def freeze_after_start(app: GatewayApp) -> GatewayApp:
    """Move everything built at start-up out of the garbage collector's sight.

    The gateway, its rule sets and its libraries are tens of thousands of long-lived objects; a
    full collection walks all of them (tens of milliseconds) and was the p99 under load. Frozen,
    a collection only looks at what requests create."""
    gc.collect()
    gc.freeze()
    return app


def create_app_from_env() -> GatewayApp:
    """Factory for server worker processes: `egress serve` passes the config path by environment."""
    path = os.environ.get(ENV_SERVE_CONFIG) or None
    config = load_config(Path(path) if path else None)
    configure_logging(config.logging, os.environ.get(ENV_LOG_LEVEL, "info"))  # a fresh process: set up its logging
    with_header_timeout(config.server.header_read_timeout_s)
    return freeze_after_start(build_app(config))
