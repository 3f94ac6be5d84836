"""The store against moto's server, through a proxy that counts every request."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

from app.secrets.errors import SecretFileError, SecretFormatError, SecretNotFound, SecretsManagerUnreachable
from app.secrets.refs import parse_reference
from app.secrets.store import SecretStore

from ..conftest import CANARY, REGION, Aws, opened
from ..support.awsproxy import AwsProxy
from ..support.polling import wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_store(proxy: AwsProxy, ttl: float = 300.0) -> tuple[SecretStore, Clock]:
    store = opened(SecretStore(ttl=ttl, region=REGION, endpoint_url=proxy.url))
    clock = Clock()
    store.clock = clock
    return store, clock


def test_eight_references_one_request_then_cached_reads_make_none(aws: Aws, proxy: AwsProxy) -> None:
    refs = []
    for i in range(8):
        aws.create(f"app/s{i}", json.dumps({"k": f"value-{i}"}))
        refs.append(parse_reference(f"aws-secretsmanager:app/s{i}:k"))
    store, _ = make_store(proxy)
    proxy.reset()
    values = store.load(refs)
    assert proxy.counts == {"BatchGetSecretValue": 1}
    assert [values[r].value.get_secret_value() for r in refs] == [f"value-{i}" for i in range(8)]
    proxy.reset()
    for _ in range(10_000):
        store.get(refs[3])
    assert proxy.total == 0
    store.close()


def test_more_than_twenty_secrets_go_in_batches_of_twenty(aws: Aws, proxy: AwsProxy) -> None:
    refs = []
    for i in range(41):
        aws.create(f"many/s{i}", f"v{i}")
        refs.append(parse_reference(f"aws-secretsmanager:many/s{i}"))
    store, _ = make_store(proxy)
    proxy.reset()
    store.load(refs)
    # 20 + 20 in two batches; a lone remainder is one GetSecretValue (same round trip).
    assert proxy.counts == {"BatchGetSecretValue": 2, "GetSecretValue": 1}
    store.close()


def test_several_keys_of_one_secret_are_one_fetch(aws: Aws, proxy: AwsProxy) -> None:
    arn = aws.create("db/main", json.dumps({"username": "u", "password": "pw"}))
    store, _ = make_store(proxy)
    proxy.reset()
    got = store.load([parse_reference(f"{arn}:username::"), parse_reference(f"{arn}:password::")])
    assert sorted(v.value.get_secret_value() for v in got.values()) == ["pw", "u"]
    assert proxy.total == 1
    store.close()


def test_staged_references_are_read_concurrently_one_call_each(aws: Aws, proxy: AwsProxy) -> None:
    for i in range(3):
        aws.create(f"staged/s{i}", f"v{i}")
    refs = [parse_reference(f"aws-secretsmanager:staged/s{i}::AWSCURRENT") for i in range(3)]
    store, _ = make_store(proxy)
    proxy.reset()
    proxy.delay = 0.3  # each call takes that long at the proxy: calls made together overlap there
    store.load(refs)
    assert proxy.counts == {"GetSecretValue": 3}
    assert proxy.most_in_flight == 3  # all three in flight at once, not one after the other
    store.close()


def test_expired_values_are_served_while_one_background_batch_refreshes(aws: Aws, proxy: AwsProxy) -> None:
    aws.create("r/a", "a1")
    aws.create("r/b", "b1")
    a, b = parse_reference("aws-secretsmanager:r/a"), parse_reference("aws-secretsmanager:r/b")
    store, clock = make_store(proxy, ttl=60)
    store.load([a, b])
    aws.client.put_secret_value(SecretId="r/a", SecretString="a2")
    aws.client.put_secret_value(SecretId="r/b", SecretString="b2")
    proxy.reset()
    clock.now += 61
    assert store.get(a).value.get_secret_value() == "a1"  # stale, served at once
    wait_until(lambda: store.get(a).value.get_secret_value() == "a2", 30, "the refreshed value")
    assert store.get(b).value.get_secret_value() == "b2"
    assert proxy.counts["BatchGetSecretValue"] == 1
    store.close()


def test_a_stale_batch_answer_is_replaced_by_an_explicit_awscurrent_read(stock_aws: Aws) -> None:
    """Stock moto's BatchGetSecretValue returns the old version after a stage move."""
    aws, proxy = stock_aws, AwsProxy(stock_aws.url).start()
    aws.create("st/a", "old")
    aws.create("st/b", "other")
    new = aws.client.put_secret_value(SecretId="st/a", SecretString="new", VersionStages=["AWSPENDING"])
    current = aws.client.describe_secret(SecretId="st/a")["VersionIdsToStages"]
    old_id = next(v for v, stages in current.items() if "AWSCURRENT" in stages)
    aws.client.update_secret_version_stage(
        SecretId="st/a", VersionStage="AWSCURRENT", MoveToVersionId=new["VersionId"], RemoveFromVersionId=old_id
    )
    try:
        store, _ = make_store(proxy)
        got = store.load([parse_reference("aws-secretsmanager:st/a"), parse_reference("aws-secretsmanager:st/b")])
        assert sorted(v.value.get_secret_value() for v in got.values()) == ["new", "other"]
        assert proxy.counts.get("GetSecretValue") == 1, proxy.counts  # the stale answer, asked again by stage
        store.close()
    finally:
        proxy.stop()


def test_down_after_start_keeps_serving_and_logs_without_the_value(
    aws: Aws, proxy: AwsProxy, caplog: pytest.LogCaptureFixture
) -> None:
    aws.create("down/jwt", CANARY)
    ref = parse_reference("aws-secretsmanager:down/jwt")
    store, clock = make_store(proxy, ttl=30)
    assert store.get(ref).value.get_secret_value() == CANARY
    proxy.stop()
    clock.now += 31
    with caplog.at_level(logging.WARNING, logger="app.secrets"):
        for _ in range(50):
            assert store.get(ref).value.get_secret_value() == CANARY
        wait_until(lambda: "serving the last good value" in caplog.text, 30, "the warning")
    assert CANARY not in caplog.text
    assert "down/jwt" in caplog.text
    with pytest.raises(SecretsManagerUnreachable) as info:
        store.refresh(ref)
    assert proxy.url.split("//")[1] in str(info.value)
    assert store.get(ref).value.get_secret_value() == CANARY
    store.close()


def test_down_at_start_fails_fast_naming_the_endpoint(aws: Aws, proxy: AwsProxy) -> None:
    proxy.stop()
    store, _ = make_store(proxy)
    started = time.monotonic()
    with pytest.raises(SecretsManagerUnreachable) as info:
        store.load([parse_reference("aws-secretsmanager:x/y"), parse_reference("aws-secretsmanager:x/z")])
    assert proxy.url in str(info.value)
    assert time.monotonic() - started < 30
    store.close()


def test_throttled_batch_falls_back_to_single_reads(aws: Aws, proxy: AwsProxy) -> None:
    for i in range(4):
        aws.create(f"t/s{i}", f"v{i}")
    proxy.throttle = lambda op: op == "BatchGetSecretValue"
    store, _ = make_store(proxy)
    proxy.reset()
    got = store.load([parse_reference(f"aws-secretsmanager:t/s{i}") for i in range(4)])
    assert len(got) == 4
    assert proxy.counts["GetSecretValue"] == 4
    assert proxy.counts["BatchGetSecretValue"] >= 2  # botocore retried it before we fell back
    store.close()


def test_throttled_single_reads_are_retried_with_backoff(aws: Aws, proxy: AwsProxy) -> None:
    aws.create("t/one", "v")
    calls = {"n": 0}

    def twice(op: str) -> bool:
        calls["n"] += 1
        return calls["n"] <= 2

    proxy.throttle = twice
    store, _ = make_store(proxy)
    assert store.get(parse_reference("aws-secretsmanager:t/one")).value.get_secret_value() == "v"
    assert proxy.counts["GetSecretValue"] == 3
    store.close()


def test_concurrent_refreshes_of_one_secret_share_one_call(aws: Aws, proxy: AwsProxy) -> None:
    aws.create("c/db", "v1")
    ref = parse_reference("aws-secretsmanager:c/db")
    store, _ = make_store(proxy)
    store.get(ref)
    aws.client.put_secret_value(SecretId="c/db", SecretString="v2")
    proxy.reset()
    proxy.delay = 0.3
    results: list[str] = []
    barrier = threading.Barrier(10)

    def worker() -> None:
        barrier.wait()
        results.append(store.refresh(ref).value.get_secret_value())

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["v2"] * 10
    # Callers share a fetch that started after they asked: the first caller's fetch,
    # then at most one more for those who asked while it was already under way.
    assert proxy.total <= 2
    store.close()


def test_pending_stage_is_readable(aws: Aws, proxy: AwsProxy) -> None:
    aws.create("p/db", "current")
    aws.client.put_secret_value(SecretId="p/db", SecretString="pending", VersionStages=["AWSPENDING"])
    ref = parse_reference("aws-secretsmanager:p/db")
    store, _ = make_store(proxy)
    assert store.get(ref).value.get_secret_value() == "current"
    assert store.get(ref, stage="AWSPENDING").value.get_secret_value() == "pending"
    with pytest.raises(SecretNotFound):
        store.get(ref, stage="AWSPREVIOUS")
    store.close()


def test_json_key_errors(aws: Aws, proxy: AwsProxy) -> None:
    aws.create("j/plain", CANARY)
    aws.create("j/obj", json.dumps({"a": CANARY}))
    store, _ = make_store(proxy)
    with pytest.raises(SecretFormatError) as not_json:
        store.get(parse_reference("aws-secretsmanager:j/plain:password"))
    with pytest.raises(SecretFormatError) as missing:
        store.get(parse_reference("aws-secretsmanager:j/obj:password"))
    assert "not a JSON object" in str(not_json.value)
    assert "no key 'password' (keys: a)" in str(missing.value)
    assert CANARY not in str(not_json.value) + str(missing.value)
    store.close()


def test_file_references_are_reread_on_refresh(tmp_path: Path) -> None:
    path = tmp_path / "jwt"
    path.write_text("first\n")
    ref = parse_reference(f"file:{path}")
    store = SecretStore()
    first = store.get(ref)
    assert first.value.get_secret_value() == "first"
    path.write_text("second")
    second = store.refresh(ref)
    assert second.value.get_secret_value() == "second"
    assert first.version_id != second.version_id
    with pytest.raises(SecretFileError) as info:
        store.get(parse_reference(f"file:{tmp_path}/missing"))
    assert "no such file" in str(info.value)
    store.close()


@pytest.mark.parametrize(
    ("content", "value"),
    [
        (b"a\rb\r\nc\n", "a\rb\r\nc"),  # inside: every byte as it is, carriage returns included
        (b"ends-with-cr\r", "ends-with-cr\r"),
        (b"one-newline\n", "one-newline"),
        (b"windows-newline\r\n", "windows-newline"),
        (b"two-newlines\n\n", "two-newlines\n"),  # one is dropped, not all
        (b"none", "none"),
    ],
)
def test_a_file_reference_is_read_byte_for_byte_but_one_trailing_newline(
    tmp_path: Path, content: bytes, value: str
) -> None:
    path = tmp_path / "secret"
    path.write_bytes(content)
    store = SecretStore()
    assert store.get(parse_reference(f"file:{path}")).value.get_secret_value() == value


def test_a_batch_refused_whole_for_one_secret_blames_that_secret_only(aws: Aws, proxy: AwsProxy) -> None:
    aws.create("whole/database", "postgresql://u:p@h/db")
    aws.create("whole/jwt", CANARY)
    # moto: RotateSecret without a function stages AWSCURRENT on a version with no value, and
    # then refuses every batch that names the secret (AWS would say so in the answer's Errors).
    aws.client.rotate_secret(SecretId="whole/jwt", RotationRules={"AutomaticallyAfterDays": 30})
    store, _ = make_store(proxy)
    database = parse_reference("aws-secretsmanager:whole/database")
    jwt = parse_reference("aws-secretsmanager:whole/jwt")
    resolved, errors = store.load_all([database, jwt])
    assert resolved[database].value.get_secret_value() == "postgresql://u:p@h/db"
    assert list(errors) == [jwt] and isinstance(errors[jwt], SecretNotFound), errors
    assert "whole/database" not in errors[jwt].message
    store.close()
