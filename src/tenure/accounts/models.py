"""People and machines that may use Tenure: users with roles, and API tokens (stored hashed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db.base import Base, ChangeLogged
from tenure.db.types import UTCDateTime

ROLES = ("owner", "technician", "bookkeeper", "readonly", "intake")


class User(ChangeLogged, Base):
    __tablename__ = "user_account"
    __changelog_redact__ = ("password_hash",)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(default=True)

    def changelog_label(self) -> str:
        return self.username


class ApiToken(ChangeLogged, Base):
    __tablename__ = "api_token"
    __changelog_redact__ = ("token_hash",)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(12))
    prefix: Mapped[str] = mapped_column(String(12), index=True)  # shown in lists, never the secret
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def changelog_label(self) -> str:
        return self.name


class WebSession(Base):
    """A signed-in browser (accounts/users.py): the cookie holds a secret, the row only its hash.

    Not change-logged: sessions are not business objects, and a page view must not write the change log.
    """

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_user", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class LoginFailure(Base):
    """A failed log-in, kept for the rate limit (accounts/users.py) and pruned after the window."""

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_user_ip", "username", "ip", "at"),
        Index("ix_login_failure_ip", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    ip: Mapped[str] = mapped_column(String(45))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
