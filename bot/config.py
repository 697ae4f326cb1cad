"""Configuration from the environment or `.env` (pydantic-settings).

A wrong or missing setting fails at start with one line naming the key (`ConfigError`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_FOCUS_AREAS = (
    "Vekst og utvikling",
    "Areal og transport",
    "Natur, kultur, miljø og samfunnssikkerhet",
    "Folkehelse",
    "Tettsteder og knutepunkter",
    "Annet",
)
LANGUAGES = ("nb", "nn", "en")
# The duplicate detector's tuned thresholds (0–100; the measurements are in
# bot/dedup/detector.py). Settings is the one reader of KOMINN_DEDUP_THRESHOLD and
# KOMINN_TRIAGE_THRESHOLD; a `DuplicateFinder()` without arguments asks it.
DEFAULT_DEDUP_THRESHOLD: float = 40.0
DEFAULT_TRIAGE_THRESHOLD: float = 31.0


class ConfigError(SystemExit):
    """Raised with one line naming the bad key; the CLI prints it and exits 2."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


def _split(value: object, separators: str) -> object:
    if isinstance(value, str):
        for sep in separators[1:]:
            value = value.replace(sep, separators[0])
        return [part.strip() for part in value.split(separators[0]) if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True,
        env_ignore_empty=True,
    )

    database_url: str = Field("sqlite:///./kominn.db", validation_alias=_env("DATABASE_URL"))

    telegram_bot_token: str | None = Field(None, validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    telegram_api_base_url: str = Field(
        "https://api.telegram.org/bot", validation_alias=_env("TELEGRAM_API_BASE_URL")
    )
    telegram_webhook_url: str | None = Field(None, validation_alias=_env("TELEGRAM_WEBHOOK_URL"))
    telegram_webhook_secret: str | None = Field(
        None, validation_alias=_env("TELEGRAM_WEBHOOK_SECRET")
    )
    # The bot's @username, stored bare (`asker_kominn_bot`): the "@" people write is dropped.
    telegram_bot_username: str | None = Field(
        None, validation_alias=_env("TELEGRAM_BOT_USERNAME")
    )
    # Telegram's guideline for a bot is about 30 messages/s overall; 0 turns the cap off.
    telegram_max_messages_per_second: float = Field(
        30, ge=0, validation_alias=_env("TELEGRAM_MAX_MESSAGES_PER_SECOND")
    )

    slack_bot_token: str | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_signing_secret: str | None = Field(None, validation_alias=_env("SLACK_SIGNING_SECRET"))
    slack_app_token: str | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))
    slack_moderators: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("SLACK_MODERATORS")
    )
    slack_moderator_group: str | None = Field(
        None, validation_alias=_env("SLACK_MODERATOR_GROUP")
    )
    slack_ideas_channel: str | None = Field(None, validation_alias=_env("SLACK_IDEAS_CHANNEL"))
    # Answer people without a `/kominn språk` choice in their Slack language (users.info, scope
    # users:read). Off: KOMINN_LOCALE, since Slack itself is not offered in Norwegian.
    slack_use_user_locale: bool = Field(
        False, validation_alias=_env("SLACK_USE_USER_LOCALE")
    )
    # Where moderator nudges and the weekly digest go (default: SLACK_IDEAS_CHANNEL).
    moderator_channel: str | None = Field(
        None, validation_alias=_env("KOMINN_MODERATOR_CHANNEL")
    )

    http_host: str = Field("127.0.0.1", validation_alias=_env("KOMINN_HTTP_HOST"))
    http_port: int = Field(8080, ge=0, le=65535, validation_alias=_env("KOMINN_HTTP_PORT"))
    # Open311: the one jurisdiction served (empty: any `jurisdiction_id` is accepted) and the
    # contact line of the discovery document.
    open311_jurisdiction: str = Field("", validation_alias=_env("KOMINN_OPEN311_JURISDICTION"))
    open311_contact: str = Field("", validation_alias=_env("KOMINN_OPEN311_CONTACT"))
    locale: Literal["nb", "nn", "en"] = Field("nb", validation_alias=_env("KOMINN_LOCALE"))
    timezone: str = Field("Europe/Oslo", validation_alias=_env("KOMINN_TIMEZONE"))
    quiet_hours: str = Field("21-08", validation_alias=_env("KOMINN_QUIET_HOURS"))
    dedup_threshold: float = Field(
        DEFAULT_DEDUP_THRESHOLD, ge=0, le=100, validation_alias=_env("KOMINN_DEDUP_THRESHOLD")
    )
    triage_threshold: float = Field(
        DEFAULT_TRIAGE_THRESHOLD, ge=0, le=100, validation_alias=_env("KOMINN_TRIAGE_THRESHOLD")
    )
    focus_areas: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_FOCUS_AREAS),
        validation_alias=_env("KOMINN_FOCUS_AREAS"),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_env("KOMINN_LOG_LEVEL")
    )
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("KOMINN_LOG_FORMAT"))
    max_ideas_per_day: int = Field(5, ge=1, validation_alias=_env("KOMINN_MAX_IDEAS_PER_DAY"))
    max_messages_per_minute: int = Field(
        30, ge=1, validation_alias=_env("KOMINN_MAX_MESSAGES_PER_MINUTE")
    )
    stale_days: int = Field(14, ge=1, validation_alias=_env("KOMINN_STALE_DAYS"))
    benefit_check_days: int = Field(30, ge=1, validation_alias=_env("KOMINN_BENEFIT_CHECK_DAYS"))
    dialog_reminder_hours: int = Field(
        24, ge=1, validation_alias=_env("KOMINN_DIALOG_REMINDER_HOURS")
    )
    dialog_expiry_days: int = Field(7, ge=1, validation_alias=_env("KOMINN_DIALOG_EXPIRY_DAYS"))
    retention_days: int = Field(30, ge=1, validation_alias=_env("KOMINN_RETENTION_DAYS"))
    # How long the worker that handled an update has to send its answer before another
    # worker (a redelivery, or the periodic sweep) may take it over: a worker that died
    # is covered after this long; a live one renews it while it waits on Telegram.
    send_lease_seconds: float = Field(60, gt=0, validation_alias=_env("KOMINN_SEND_LEASE_SECONDS"))
    # How long a notice that could not be delivered waits before the first retry; every
    # further retry waits twice as long (capped at an hour; a server's Retry-After wins when
    # it is longer). bot/followups/dispatcher.py: Policy.
    retry_seconds: float = Field(30, gt=0, validation_alias=_env("KOMINN_RETRY_SECONDS"))

    # The web channel (adapters/web): always served by `kominn run`.
    public_url: str | None = Field(None, validation_alias=_env("KOMINN_PUBLIC_URL"))
    # Sites (scheme://host[:port]) that may embed the chat button with /widget.js.
    web_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("KOMINN_WEB_ORIGINS")
    )
    # E-mail follow-ups for web citizens who give an address (unset: no e-mail), e.g.
    # smtp://user:pass@mail.kommune.no:587 (STARTTLS) or smtps://…:465 (TLS).
    smtp_url: str | None = Field(None, validation_alias=_env("KOMINN_SMTP_URL"))
    mail_from: str = Field("KomInn <kominn@localhost>", validation_alias=_env("KOMINN_MAIL_FROM"))
    # Where bounces go (VERP: each mail's envelope sender is bounces+<token>@domain, and an
    # MTA pipes what arrives there into `kominn mail bounce`); unset: the From address.
    mail_bounces: str | None = Field(None, validation_alias=_env("KOMINN_MAIL_BOUNCES"))
    # When a new idea shows on public pages: at once, or once a moderator moved or published it.
    publish: Literal["immediately", "after-review"] = Field(
        "immediately", validation_alias=_env("KOMINN_PUBLISH")
    )
    # Signs the web session cookie; unset: generated once and kept in the database.
    web_secret: str | None = Field(None, min_length=16, validation_alias=_env("KOMINN_WEB_SECRET"))
    # Proxies (IP addresses or networks) whose X-Forwarded-For/-Proto are believed; none by default.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("KOMINN_TRUSTED_PROXIES")
    )
    # Web chat messages per minute from one client address (many people share a school's).
    web_max_messages_per_address: int = Field(
        300, ge=1, validation_alias=_env("KOMINN_WEB_MAX_MESSAGES_PER_ADDRESS")
    )

    @field_validator("mail_bounces")
    @classmethod
    def _bounces(cls, value: str | None) -> str | None:
        if value and not re.match(r"^[^@\s+<>]+@[^@\s<>]+$", value):
            raise ValueError("must be a bare address without '+', e.g. bounces@kommune.no")
        return value or None

    @field_validator("telegram_bot_username")
    @classmethod
    def _bot_username(cls, value: str | None) -> str | None:
        name = (value or "").strip().removeprefix("@")
        if name and not re.fullmatch(r"[A-Za-z0-9_]{5,32}", name):
            raise ValueError("must be the bot's username, e.g. @asker_kominn_bot")
        return name or None

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, value: str | None) -> str | None:
        if value and not re.match(r"^smtps?://[^/]+", value):
            raise ValueError("must look like smtp://user:pass@host:587 or smtps://host:465")
        return value

    @field_validator("web_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        return _split(value, ", ;")

    @field_validator("web_origins")
    @classmethod
    def _origin_form(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"https?://[^/\s]+", item):
                raise ValueError(f"{item!r} is not an origin like https://www.kommune.no")
        return [item.rstrip("/") for item in value]

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        return _split(value, ", ;")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("slack_moderators", mode="before")
    @classmethod
    def _ids(cls, value: object) -> object:
        return _split(value, ", ;")

    @field_validator("focus_areas", mode="before")
    @classmethod
    def _areas(cls, value: object) -> object:
        # Area names contain commas ("Natur, kultur, …"), so the list separator is ';'.
        return _split(value, ";")

    @field_validator("focus_areas")
    @classmethod
    def _areas_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one focus area")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("triage_threshold")
    @classmethod
    def _triage_below_dedup(cls, value: float, info: ValidationInfo) -> float:
        """The triage threshold is the lower one: above the dedup threshold it would keep
        the pairs between the two from the moderators and the citizens both."""
        dedup = info.data.get("dedup_threshold")
        if dedup is not None and value > dedup:
            raise ValueError(f"must not be above KOMINN_DEDUP_THRESHOLD ({dedup:g})")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str) -> str:
        if value.strip().lower() == "off":
            return "off"
        parse_quiet_hours(value)
        return value.strip()

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be a URL like sqlite:///./kominn.db or postgresql+psycopg://…")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def quiet_window(self) -> tuple[int, int] | None:
        return None if self.quiet_hours == "off" else parse_quiet_hours(self.quiet_hours)

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token))

    @property
    def is_default_sqlite(self) -> bool:
        """The embedded default upgrades its own schema; other databases need `db upgrade`."""
        return self.database_url.startswith("sqlite")


def parse_quiet_hours(value: str) -> tuple[int, int]:
    """`"21-08"` → (21, 8): start and end hour of the night window."""
    try:
        start, end = (int(part) for part in value.split("-"))
    except ValueError:
        raise ValueError("must look like 21-08 (start-end hour) or off") from None
    if not (0 <= start <= 23 and 0 <= end <= 23):
        raise ValueError("hours must be 0–23")
    return start, end


def _env_name(settings_field: str) -> str:
    alias = Settings.model_fields[settings_field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return settings_field.upper()


def load_settings(**overrides: object) -> Settings:
    """Read settings; on a bad value raise `ConfigError` with one line naming the key."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = str(error["loc"][0]) if error["loc"] else "?"
        key = _env_name(loc) if loc in Settings.model_fields else loc
        raise ConfigError(f"Invalid setting {key}: {error['msg']}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
