"""Which agent is calling, from its User-Agent (the User-Agents the real agents send, as recorded
by tests/integration/test_agents*.py)."""

from __future__ import annotations

import pytest

from egress.gateway.clients import identify


@pytest.mark.parametrize(
    ("user_agent", "client"),
    [
        (b"claude-cli/2.1.332 (external, sdk-cli)", "claude-code"),
        (b"codex_exec/0.169.0 (Debian 12; x86_64)", "codex"),
        (b"opencode/1.18.33 ai-sdk/provider-utils/4.0.23 runtime/bun/1.3.14", "opencode"),
        (b"mistral-client-python/2.6.0", "mistral-python"),  # Mistral Vibe, through Mistral's SDK
        (b"GeminiCLI-tui/0.61.0/gemini-2.5-pro (linux; x64)", "gemini-cli"),
        (b"google-genai-sdk/3.6.1 gl-python/3.11.7", "google-genai"),
        (b"OpenAI/Python 2.20.0", "openai-python"),  # aider, through litellm's OpenAI client
        (b"ai-sdk/openai-compatible/3.0.37 ai-sdk/provider-utils/5.0.30 runtime/bun/1.3.13", "unknown"),  # Cline
        (b"ls/JS 5.23.2", "unknown"),  # Continue's CLI
    ],
)
def test_user_agent_names_the_client(user_agent: bytes, client: str) -> None:
    info = identify([(b"user-agent", user_agent)])
    assert info.name == client
    assert info.user_agent == user_agent.decode()


def test_opencode_session_header_is_the_session() -> None:
    info = identify([(b"user-agent", b"opencode/1.18.33"), (b"x-session-id", b"ses_0123")])
    assert (info.name, info.session_id) == ("opencode", "ses_0123")
