"""Which agent is calling, from the headers it sends anyway. Used for audit and policy only."""

from __future__ import annotations

from egress.core.exchange import ClientInfo

# (User-Agent prefix, client name), first match wins.
_USER_AGENTS = (
    (b"claude-cli/", "claude-code"),
    (b"codex_cli_rs", "codex"),
    (b"codex_exec", "codex"),
    (b"aider", "aider"),
    (b"opencode/", "opencode"),
    (b"litellm", "litellm"),
    (b"Anthropic/Python", "anthropic-python"),
    (b"Anthropic/JS", "anthropic-js"),
    (b"OpenAI/Python", "openai-python"),
    (b"OpenAI/JS", "openai-js"),
    (b"mistral-client-python/", "mistral-python"),  # Mistral's SDK (Mistral Vibe sends it unchanged)
    (b"GeminiCLI", "gemini-cli"),  # GeminiCLI/0.61.0/<model> (headless) or GeminiCLI-tui/...
    (b"google-genai-sdk/", "google-genai"),  # Google's Gen AI SDK (Python: then gl-python/)
)
# Claude Code sends x-claude-code-session-id; Codex sends session-id (older versions session_id).
_SESSION_HEADERS = (
    b"x-claude-code-session-id",
    b"session-id",
    b"session_id",
    b"conversation_id",
    b"thread-id",
    b"x-session-id",
)


def identify(headers: list[tuple[bytes, bytes]]) -> ClientInfo:
    user_agent: bytes | None = None
    originator: bytes | None = None
    sessions: dict[bytes, bytes] = {}
    for name, value in headers:
        if name == b"user-agent":
            user_agent = value
        elif name == b"originator":
            originator = value
        elif name in _SESSION_HEADERS:
            sessions.setdefault(name, value)
    # The most specific session header wins, whatever order the client sent them in.
    session = next((sessions[h] for h in _SESSION_HEADERS if h in sessions), None)
    client = "unknown"
    if originator and originator.startswith(b"codex"):
        client = "codex"
    elif user_agent:
        for prefix, agent in _USER_AGENTS:
            if user_agent.startswith(prefix):
                client = agent
                break
    return ClientInfo(
        name=client,
        user_agent=user_agent.decode("latin-1")[:256] if user_agent else None,
        session_id=session.decode("latin-1")[:128] if session else None,
    )
