"""Settings from the environment, validated once at start. Secrets are ``SecretStr`` and never logged."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STOP_GRACE = 10.0  # seconds from SIGTERM to exit: intake stops, work in flight finishes, the rest waits
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """Every environment variable the bot reads (README has the reference table)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    # where things live
    models_file: Path = Field(default=REPO_ROOT / "models.yaml", alias="BOT_MODELS_FILE")
    database_path: Path = Field(default=Path("data/bot.sqlite3"), alias="BOT_DATABASE")
    # postgresql://user:password@host/db (several bot processes share it); unset: the SQLite file above
    database_url: SecretStr | None = Field(default=None, alias="BOT_DATABASE_URL")
    model_cache_dir: Path | None = Field(default=None, alias="BOT_MODEL_CACHE")  # ONNX conversions; HF uses HF_HOME

    # classifier tuning
    max_batch: int = Field(default=64, ge=1, le=512, alias="BOT_MAX_BATCH")  # bench/serving_sweep.py
    max_batch_tokens: int = Field(default=2048, ge=1, le=65536, alias="BOT_MAX_BATCH_TOKENS")
    max_wait_ms: float = Field(default=2.0, ge=0, le=1000, alias="BOT_MAX_WAIT_MS")
    flood_cache_size: int = Field(default=4096, ge=0, le=1_000_000, alias="BOT_FLOOD_CACHE_SIZE")  # 0: off
    flood_cache_ttl_s: float = Field(default=60.0, ge=0, le=86_400, alias="BOT_FLOOD_CACHE_TTL")
    model_cache_size: int = Field(default=3, ge=1, le=32, alias="BOT_MODEL_CACHE_SIZE")

    # reliability
    stop_grace: float = Field(default=DEFAULT_STOP_GRACE, ge=0, le=600, alias="BOT_STOP_GRACE")  # SIGTERM to exit
    discord_catchup_minutes: float = Field(default=15.0, ge=0, le=24 * 60, alias="BOT_DISCORD_CATCHUP_MINUTES")
    discord_catchup_messages: int = Field(default=500, ge=0, le=10_000, alias="BOT_DISCORD_CATCHUP_MESSAGES")

    # logging
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    log_json: bool = Field(default=False, alias="LOG_JSON")

    # Discord
    discord_token: SecretStr | None = Field(default=None, alias="DISCORD_TOKEN")
    discord_guild_ids: str = Field(default="", alias="DISCORD_GUILD_IDS")  # comma-separated, for fast command sync
    discord_api_base_url: str | None = Field(default=None, alias="DISCORD_API_BASE_URL")
    discord_gateway_url: str | None = Field(default=None, alias="DISCORD_GATEWAY_URL")
    # sharding: unset -> as many shards as Discord recommends, all in this process
    discord_shard_count: int | None = Field(default=None, ge=1, alias="DISCORD_SHARD_COUNT")
    discord_shard_ids: str = Field(default="", alias="DISCORD_SHARD_IDS")  # comma-separated, e.g. "0,1" of the count

    # Telegram
    telegram_token: SecretStr | None = Field(default=None, alias="TELEGRAM_TOKEN")
    telegram_api_base_url: str | None = Field(default=None, alias="TELEGRAM_API_BASE_URL")
    telegram_webhook_url: str | None = Field(default=None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_listen: str = Field(default="0.0.0.0", alias="TELEGRAM_WEBHOOK_LISTEN")
    telegram_webhook_port: int = Field(default=8443, ge=1, le=65535, alias="TELEGRAM_WEBHOOK_PORT")
    telegram_webhook_secret: SecretStr | None = Field(default=None, alias="TELEGRAM_WEBHOOK_SECRET")

    # the moderators' web dashboard (off unless DASHBOARD_PORT is set)
    dashboard_port: int | None = Field(default=None, ge=0, le=65535, alias="DASHBOARD_PORT")
    dashboard_host: str = Field(default="127.0.0.1", alias="DASHBOARD_HOST")
    dashboard_public_url: str | None = Field(default=None, alias="DASHBOARD_PUBLIC_URL")  # the links' base URL
    dashboard_secret: SecretStr | None = Field(default=None, alias="DASHBOARD_SECRET")  # else generated and stored
    dashboard_link_minutes: int = Field(default=15, ge=1, le=24 * 60, alias="DASHBOARD_LINK_MINUTES")

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        level = "WARNING" if level == "WARN" else level
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
        return level

    @field_validator("dashboard_public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is not None and value.strip() and not value.strip().startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, not {value!r}")
        return value.strip().rstrip("/") or None if value is not None else None

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        text = value.get_secret_value().strip() if value is not None else ""
        if not text:
            return None
        scheme = text.split("://", 1)[0] if "://" in text else ""
        if scheme.split("+", 1)[0] not in ("postgresql", "postgres", "sqlite"):
            shown = f"{scheme}://..." if scheme else "a value without a scheme"
            raise ValueError(f"must be postgresql://user:password@host:port/database (or sqlite:///path), not {shown}")
        return value

    @field_validator("discord_shard_ids")
    @classmethod
    def _check_shard_ids(cls, value: str) -> str:
        parts = [part for part in value.replace(" ", "").split(",") if part]
        if not all(part.isdigit() for part in parts):
            raise ValueError(f"must be comma-separated shard numbers such as 0,1, not {value!r}")
        return ",".join(parts)

    @model_validator(mode="after")
    def _check_shards(self) -> Settings:
        ids = self.shard_ids
        if ids and self.discord_shard_count is None:
            raise ValueError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (the total number of shards)")
        if ids and self.discord_shard_count is not None and max(ids) >= self.discord_shard_count:
            raise ValueError(
                f"DISCORD_SHARD_IDS {self.discord_shard_ids}: each must be below "
                f"DISCORD_SHARD_COUNT {self.discord_shard_count}"
            )
        return self

    @property
    def shard_ids(self) -> list[int] | None:
        """The shards this process runs, or None for all of ``discord_shard_count`` (or Discord's recommendation)."""
        ids = [int(part) for part in self.discord_shard_ids.split(",") if part]
        return sorted(set(ids)) or None

    @property
    def database(self) -> str:
        """What ``Storage.open`` takes: ``BOT_DATABASE_URL`` when set, else the SQLite file ``BOT_DATABASE``."""
        if self.database_url is not None and self.database_url.get_secret_value().strip():
            return self.database_url.get_secret_value().strip()
        return str(self.database_path)

    @property
    def guild_ids(self) -> list[int]:
        return [int(part) for part in self.discord_guild_ids.replace(" ", "").split(",") if part]


def load_settings() -> Settings:
    return Settings()
