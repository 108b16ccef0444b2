"""Security settings pass through from the environment; secrets never show; SQL is bound."""

from __future__ import annotations

import logging
import re
import ssl
from pathlib import Path

import faust
import pytest

from pipelines.config import Settings, redact_url, settings_table
from pipelines.security import (
    SecuritySettingsError,
    aiokafka_client_config,
    kafka_client_config,
    kafka_ssl_context,
)
from pipelines.streaming.faust.credentials import faust_broker_credentials

SECRET = "s3cr3t-Pa55word-do-not-print"
ROOT = Path(__file__).resolve().parents[2]


def test_plaintext_needs_no_client_config():
    settings = Settings.from_env({})
    assert kafka_client_config(settings) == {}
    assert kafka_ssl_context(settings) is None
    assert faust_broker_credentials(settings) is None


def test_sasl_ssl_settings_pass_through_from_the_environment():
    settings = Settings.from_env(
        {
            "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "netquality",
            "KAFKA_SASL_PASSWORD": SECRET,
            "KAFKA_SSL_CAFILE": "/etc/ssl/ca.pem",
        }
    )
    assert kafka_client_config(settings) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "netquality",
        "sasl_plain_password": SECRET,
        "ssl_cafile": "/etc/ssl/ca.pem",
    }


def test_password_can_come_from_a_file_and_the_env_wins(tmp_path):
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET + "\n")
    env = {"KAFKA_SASL_PASSWORD_FILE": str(secret_file)}
    assert Settings.from_env(env).kafka_sasl_password == SECRET
    assert Settings.from_env({**env, "KAFKA_SASL_PASSWORD": "x"}).kafka_sasl_password == "x"
    db_file = tmp_path / "db"
    db_file.write_text(f"postgresql://nq:{SECRET}@db/nq?sslmode=verify-full")
    url = Settings.from_env({"DATABASE_URL_FILE": str(db_file)}).database_url
    assert url == f"postgresql://nq:{SECRET}@db/nq?sslmode=verify-full"


def test_unreadable_secret_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read secret file"):
        Settings.from_env({"KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN"},
            "KAFKA_SASL_USERNAME",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "/c.pem"}, "KAFKA_SSL_KEYFILE"),
    ],
)
def test_inconsistent_security_settings_name_the_variable(env, message):
    with pytest.raises(SecuritySettingsError, match=message):
        kafka_client_config(Settings.from_env(env))


def test_faust_gets_sasl_credentials_with_a_verifying_tls_context():
    settings = Settings.from_env(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "PLAIN",
            "KAFKA_SASL_USERNAME": "u",
            "KAFKA_SASL_PASSWORD": SECRET,
        }
    )
    credentials = faust_broker_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "u"
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert credentials.ssl_context.check_hostname


def test_repr_and_logs_never_show_secret_values(caplog):
    settings = Settings.from_env(
        {
            "KAFKA_SASL_PASSWORD": SECRET,
            "DATABASE_URL": f"postgresql+psycopg://nq:{SECRET}@db:5432/nq?sslmode=require",
        }
    )
    text = repr(settings)
    assert SECRET not in text and SECRET not in str(settings)
    assert "postgresql+psycopg://nq:***@db:5432/nq?sslmode=require" in text
    with caplog.at_level(logging.INFO):
        logging.getLogger("netquality.test").info("settings: %s", settings)
        logging.getLogger("netquality.test").info("settings: %r", settings)
    assert SECRET not in caplog.text
    assert all(SECRET not in " ".join(row) for row in settings_table())


def test_redact_url_keeps_everything_but_the_password():
    assert redact_url("postgresql://u:p@h/db") == "postgresql://u:***@h/db"
    assert redact_url("postgresql://u:p@ss@h/db") == "postgresql://u:***@h/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("postgresql://h/db?password=x") == "postgresql://h/db?password=x"


def test_no_secret_defaults_in_code():
    """Secrets come from the environment or files: no default holds a value."""
    defaults = Settings()
    assert defaults.kafka_sasl_password is None
    assert defaults.database_url is None


# Executions whose SQL is built by string formatting: f"...", "..." % x, "...".format(...).
_FORMATTED_SQL = re.compile(
    r"\.(execute|exec_driver_sql|executemany)\(\s*"
    r"(f[\"']|[\"'][^\"']*[\"']\s*%|[\"'][^\"']*[\"']\.format)"
)
_FSTRING_TEXT = re.compile(r"\btext\(\s*f[\"']")
_FSTRING_PART = re.compile(r"\bf\"([^\"]*)\"")
_FIELD = re.compile(r"\{([^{}]*)\}")
IDENTIFIER_EXPRESSIONS = {
    # Partition DDL in pipelines/storage/models.py: table names are module constants and
    # partition names/bounds derive from a date, never from input; values stay bound (:lo/:hi).
    "DEFAULT_PARTITION",
    "LEVEL_CHANGES",
    "name",
    "partition_bounds(day)",
}


def formatted_sql(source: str) -> list[tuple[int, set[str]]]:
    """(line, interpolated expressions) of every SQL execution built by string formatting."""
    found = []
    for pattern in (_FORMATTED_SQL, _FSTRING_TEXT):
        for match in pattern.finditer(source):
            line = source.count("\n", 0, match.start()) + 1
            statement = source[match.start() : match.start() + 400].split("),", 1)[0]
            fields = {f for part in _FSTRING_PART.findall(statement) for f in _FIELD.findall(part)}
            found.append((line, fields if fields else {"<%/format>"}))
    return found


def test_sql_only_through_bound_parameters():
    """No SQL in pipelines/ interpolates anything but known identifiers; values are bound."""
    offenders = []
    for path in sorted((ROOT / "pipelines").rglob("*.py")):
        for line, fields in formatted_sql(path.read_text()):
            if not fields <= IDENTIFIER_EXPRESSIONS:
                offenders.append(f"{path.relative_to(ROOT)}:{line} {sorted(fields)}")
    assert offenders == [], f"SQL built by string formatting at {offenders}"


def test_the_sql_check_catches_formatted_sql():
    assert _FORMATTED_SQL.search('conn.execute(f"SELECT * FROM t WHERE id = {x}")')
    assert _FORMATTED_SQL.search("cur.execute('SELECT %s' % x)")
    assert _FORMATTED_SQL.search('cur.execute("SELECT {}".format(x))')
    assert _FSTRING_TEXT.search('text(f"DELETE FROM {t}")')
    assert not _FORMATTED_SQL.search('conn.execute(text("SELECT 1 WHERE a = :a"), {"a": 1})')
    assert formatted_sql('conn.execute(text(f"SELECT {user_input}"))') == [(1, {"user_input"})]


def test_aiokafka_gets_an_ssl_context_instead_of_file_names():
    settings = Settings.from_env(
        {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": ""}  # system CAs
    )
    config = aiokafka_client_config(settings)
    assert config["security_protocol"] == "SSL"
    assert isinstance(config["ssl_context"], ssl.SSLContext)
    assert not any(key.startswith("ssl_") and key != "ssl_context" for key in config)
    assert aiokafka_client_config(Settings.from_env({})) == {}
