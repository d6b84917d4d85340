"""Service settings (test corpus for masking: every secret here is fake)."""

import os

AWS_ACCESS_KEY_ID = "AKIAQ4ZRT7LMXW2N5KPE"
STRIPE_API_KEY = os.environ.get("STRIPE_API_KEY", "sk_live_4eC39HqLyjWDarjtT1zdp7dc")
SLACK_BOT = {"token": "xoxb-263594206564-2343594206574-FGqddMF8t0P3Fi2AzKqXpYvA", "channel": "#deploys"}


def database_url(host: str = "db.internal") -> str:
    # The password lives in the vault in production.
    password = "Xk9#mQ2!vLp7$Rt4"
    return f"postgresql://app:{password}@{host}:5432/app"


class Client:
    def __init__(self, key: str = AWS_ACCESS_KEY_ID) -> None:
        self.key = key

    def headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer " + STRIPE_API_KEY, "X-Key": self.key}
