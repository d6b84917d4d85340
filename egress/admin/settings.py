"""The `console:` section of the configuration: the web console at /admin and its sign-in with
the organisation's identity provider (egress.config types its field as this).

Its defaults are defined here only (the embedded egress.yaml may restate them; a test holds both equal)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from egress.identity.oidc_terms import require_secure_url
from egress.identity.settings import OidcSettings, SamlSettings


class ConsoleOidcSettings(BaseModel):
    """Console sign-in with the organisation's identity provider (authorization code + PKCE)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    issuer: str = Field(description="the issuer URL, exactly as in the ID token's iss claim (https or loopback)")
    client_id: str = Field(min_length=1, description="the console's client id at the provider (the ID token's aud)")
    client_secret_env: str | None = Field(
        default=None, description="environment variable holding the client secret; unset: a public client (PKCE only)"
    )
    redirect_url: str | None = Field(
        default=None, description="the callback registered at the provider; default <public URL>/admin/oidc/callback"
    )
    user_claim: str | None = Field(default=None, description="the claim naming the person; default email, then sub")
    groups_claim: str = Field(default="groups", description="the claim listing the person's groups")
    admin_groups: tuple[str, ...] = Field(default=(), description="a person in any of these groups is an admin")
    team_claim: str = Field(
        default="team", description="the claim naming a team (a string, or a list whose first item is used): team lead"
    )
    scopes: tuple[str, ...] = Field(default=("openid", "email", "profile"))
    ca_bundle: str | None = Field(default=None, description="CA file to reach the issuer; default the system store")
    # Set by egress.config.load_config from client_secret_env.
    client_secret: SecretStr | None = Field(default=None, exclude=True)

    @field_validator("issuer")
    @classmethod
    def _secure(cls, value: str) -> str:
        return require_secure_url(value)

    def verifier_settings(self) -> OidcSettings:
        """What the ID tokens of a console sign-in are verified against: this issuer, the
        console's client id as audience, the identity verifier's defaults for the rest."""
        return OidcSettings(
            issuer=self.issuer,
            audience=(self.client_id,),
            user_claim=self.user_claim,
            team_claim=self.team_claim,
            ca_bundle=self.ca_bundle,
        )


class ConsoleSamlSettings(SamlSettings):
    """Console sign-in with a SAML 2.0 identity provider; its attributes map to a role and team as
    the OIDC claims do (console.oidc)."""

    user_attribute: str | None = Field(
        default=None, description="the attribute naming the person; default the assertion's NameID"
    )
    groups_attribute: str = Field(default="groups", description="the attribute listing the person's groups")
    admin_groups: tuple[str, ...] = Field(default=(), description="a person in any of these groups is an admin")
    team_attribute: str = Field(default="team", description="the attribute naming a team (its first value): team lead")


class ConsoleSettings(BaseModel):
    """The web console at /admin (egress.admin)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = Field(default=True, description="serve the console at /admin")
    session_ttl_s: float = Field(default=8 * 3600.0, gt=0, le=30 * 86400, description="a sign-in lasts this long")
    login_max_failures: int = Field(
        default=5, ge=1, le=1000, description="failed sign-ins per account or client address before it is throttled"
    )
    login_window_s: float = Field(default=300.0, gt=0, le=86400, description="…counted over this window")
    refresh_s: float = Field(default=2.0, gt=0, le=3600, description="how often live pages refresh themselves")
    oidc: ConsoleOidcSettings | None = Field(default=None, description="sign-in with an identity provider, too")
    saml: ConsoleSamlSettings | None = Field(default=None, description="sign-in with a SAML 2.0 identity provider, too")
