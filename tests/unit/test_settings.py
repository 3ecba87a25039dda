import pytest
from pydantic import ValidationError

from migrationkit._redact import redact_uri
from migrationkit._settings.settings import WORKERS_PER_CORE, Settings, default_workers


def test_defaults_match_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    settings = Settings()
    assert (settings.backend, settings.writer, settings.batch_size) == ("asyncio", "copy", 10_000)
    assert settings.workers == 3 * WORKERS_PER_CORE == default_workers()


def test_environment_variables_use_the_migrationkit_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATIONKIT_BACKEND", "threading")
    monkeypatch.setenv("MIGRATIONKIT_BATCH_SIZE", "250")
    monkeypatch.setenv("MIGRATIONKIT_PG_DSN", "postgresql://app:s3cret@db/app")
    settings = Settings()
    assert (settings.backend, settings.batch_size) == ("threading", 250)
    assert settings.pg_dsn is not None
    assert settings.pg_dsn.get_secret_value() == "postgresql://app:s3cret@db/app"


def test_secrets_are_hidden_in_repr_and_in_the_redacted_dump() -> None:
    settings = Settings(
        mongo_uri="mongodb://root:s3cret@mongo:27017/?authSource=admin",
        pg_dsn="postgresql://app:s3cret@db:5432/app",
    )
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.redacted())
    assert settings.redacted()["pg_dsn"] == "postgresql://app:***@db:5432/app"


@pytest.mark.parametrize(
    ("uri", "redacted"),
    [
        ("postgresql://u:p@h/db", "postgresql://u:***@h/db"),
        ("mongodb://u:p%40ss@h1,h2/?replicaSet=r", "mongodb://u:***@h1,h2/?replicaSet=r"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("host=h user=u password=p dbname=d", "host=h user=u password=*** dbname=d"),
        (
            "postgresql://h/db?password=p&sslmode=require",
            "postgresql://h/db?password=***&sslmode=require",
        ),
    ],
)
def test_redact_uri_hides_only_the_password(uri: str, redacted: str) -> None:
    assert redact_uri(uri) == redacted


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("backend", "fibers"),
        ("writer", "csv"),
        ("batch_size", 0),
        ("workers", 0),
        ("pg_table", "users; DROP"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})
