"""ENTAIL_REDIS_URL / ENTAIL_REDIS_READ_URL are checked when the settings load:
redis://, rediss:// and unix:// (with and without a password or a database), and a
precise reason for each mistake that never repeats the URL's password."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from entail.settings import MAX_UNIX_SOCKET_PATH, Settings

GOOD = [
    "redis://127.0.0.1:6379/0",
    "redis://:pw@127.0.0.1:6379/2",
    "redis://user:pw@redis.internal",
    "rediss://:auth-string@10.0.0.3:6378/0?ssl_ca_certs=/secrets/redis-ca/ca.pem",
    "unix:///run/entail/valkey.sock",
    "unix:///run/entail/valkey.sock?db=3",
    "unix://:s%40cret@/run/entail/valkey.sock?db=0",
    "unix://user:pw@/run/entail/valkey.sock",
    "unix:///" + "d" * (MAX_UNIX_SOCKET_PATH - 1),  # exactly the limit
]


@pytest.mark.parametrize("url", GOOD)
def test_valid_urls_load(url: str) -> None:
    assert Settings(redis_url=url).redis_url == url
    assert Settings(redis_read_url=url).redis_read_url == url


BAD = [
    ("http://127.0.0.1:6379", "must start with redis://, rediss:// or unix://"),
    ("127.0.0.1:6379", "must start with redis://, rediss:// or unix://"),
    ("redis://:pw@:6379/0", "names no host"),
    ("redis://127.0.0.1:99999/0", "is not a URL"),
    ("redis://127.0.0.1:6379/zero", "only the database number may follow"),
    ("redis://127.0.0.1:6379/0?password=pw", "carries its password in the query"),
    ("unix:///run/valkey.sock?password=pw", "carries its password in the query"),
    ("unix:///run/valkey.sock?db=one", "the database is a whole number"),
    ("unix://localhost/run/valkey.sock", "names a host"),
    ("unix://:pw@localhost:6379/run/valkey.sock", "names a host"),
    ("unix://", "names no absolute socket path"),
    ("unix:///" + "d" * MAX_UNIX_SOCKET_PATH, "socket path of 108 bytes: Unix sockets take at most 107"),
]


@pytest.mark.parametrize(("url", "reason"), BAD)
def test_invalid_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    for name, field in (("ENTAIL_REDIS_URL", "redis_url"), ("ENTAIL_REDIS_READ_URL", "redis_read_url")):
        with pytest.raises(ValidationError) as caught:
            Settings.model_validate({field: url})
        (error,) = caught.value.errors()
        assert error["msg"].startswith(f"Value error, {name} ")
        assert reason in error["msg"]


def test_the_error_never_repeats_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    # from the environment, as a service loads it: the message must not carry the secret
    monkeypatch.setenv("ENTAIL_REDIS_URL", "unix://:hunter2-secret@/run/x.sock?db=zero")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "the database is a whole number" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    monkeypatch.setenv("ENTAIL_REDIS_URL", "redis://:hunter2-secret@127.0.0.1:6379/0")
    monkeypatch.setenv("ENTAIL_REDIS_WAIT_TIMEOUT_MS", "9000")  # another validator's error
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "hunter2" not in str(caught.value)


def test_an_empty_url_needs_sentinels() -> None:
    with pytest.raises(ValidationError, match="ENTAIL_REDIS_URL is empty: set it or ENTAIL_REDIS_SENTINELS"):
        Settings(redis_url="")
    # with Sentinels the URL is not used: empty (or anything) is fine
    assert Settings(redis_url="", redis_sentinels="127.0.0.1:26379").redis_sentinels
    # the read URL is optional
    assert Settings(redis_read_url="").redis_read_url == ""
