"""The student API's refusals, one test per error class (issue 15, "What must be true" 3), on a real uvicorn."""

import io
import logging
from collections import Counter

import httpx
import numpy as np
import pytest

from faceleaks.serving.keys import KeyStore
from faceleaks.serving.server import serve_in_thread
from faceleaks.serving.wire import Limits, encode_images
from tests.fakes import SIZE, fake_box, population

NPY = {"content-type": "application/x-npy"}


@pytest.fixture
def keys(tmp_path):
    store = KeyStore(tmp_path / "keys.sqlite")
    yield store
    store.close()


@pytest.fixture
def api(keys):
    """(url, secret of a key allowed 50 images, key id) of a fake student behind the real server."""
    key_id, secret = keys.create("auditor", budget=50)
    with serve_in_thread(fake_box(), keys=keys, limits=Limits(max_body=200_000, max_batch=40, rate=0)) as url:
        yield url, secret, key_id


def post(url, secret, body, headers=NPY, **kw):
    return httpx.post(f"{url}/query", content=body, headers={**headers, "X-API-Key": secret}, **kw)


def test_a_valid_query_is_answered_with_the_remaining_budget(api):
    url, secret, _ = api
    images = population(k=1)[0][:10]
    r = post(url, secret, encode_images(images))
    assert r.status_code == 200 and r.headers["x-budget-remaining"] == "40"
    np.testing.assert_allclose(r.json()["values"], fake_box().query(images).values, rtol=1e-6)


def test_missing_key_is_401_and_wrong_or_revoked_key_is_403(api, keys):
    url, secret, key_id = api
    body = encode_images(population(k=1)[0][:2])
    assert httpx.post(f"{url}/query", content=body, headers=NPY).status_code == 401
    assert post(url, secret + "x", body).status_code == 403
    assert httpx.get(f"{url}/info").status_code == 401
    keys.revoke(key_id)
    assert post(url, secret, body).status_code == 403


def test_oversized_body_is_413_from_the_header_and_from_the_stream(api):
    url, secret, _ = api
    big = b"\0" * 300_000
    assert post(url, secret, big).status_code == 413  # Content-Length says so

    def chunks():  # no Content-Length: the server counts while streaming
        for _ in range(30):
            yield b"\0" * 10_000

    r = post(url, secret, chunks())
    assert r.status_code == 413 and "200000" in r.json()["detail"]


def test_a_header_claiming_a_million_images_is_refused_before_allocating(api):
    url, secret, _ = api
    body = encode_images(population(k=1)[0][:2])
    forged = body.replace(b"(2, 8, 8, 3)", b"(1000000, 8, 8, 3)")
    r = post(url, secret, forged)
    assert r.status_code == 413 and "1000000 images" in r.json()["detail"]


@pytest.mark.parametrize("body, says", [
    (b"", "empty body"),
    (b'{"images": []}', "the body is JSON"),
    (b"\xff\xd8\xff\xe0 jpeg bytes", "the body is a JPEG"),
    (encode_images(np.zeros((2, SIZE, SIZE, 3), np.float32)), "uint8"),
    (encode_images(np.zeros((2, SIZE + 1, SIZE, 3), np.uint8)), "shape"),
])
def test_malformed_bodies_are_422_naming_the_problem(api, body, says):
    url, secret, _ = api
    r = post(url, secret, body)
    assert r.status_code == 422 and says in r.json()["detail"]


def test_a_pickled_array_is_refused_without_unpickling(api):
    url, secret, _ = api
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = post(url, secret, buf.getvalue())
    assert r.status_code == 422 and "uint8" in r.json()["detail"]


def test_a_truncated_batch_is_422_naming_the_item(api):
    url, secret, _ = api
    body = encode_images(population(k=1)[0][:5])
    r = post(url, secret, body[: -SIZE * SIZE * 3 - 10])
    assert r.status_code == 422 and r.json()["detail"].startswith("item 3 of 5 is truncated")


def test_wrong_content_type_is_415(api):
    url, secret, _ = api
    body = encode_images(population(k=1)[0][:2])
    assert post(url, secret, body, headers={"content-type": "application/json"}).status_code == 415
    assert post(url, secret, body, headers={"content-type": "image/jpeg"}).status_code == 415


def test_over_budget_is_429_and_spends_nothing_and_survives_a_restart(api, keys, tmp_path):
    url, secret, key_id = api
    images = population(k=1)[0]
    assert post(url, secret, encode_images(images[:30])).headers["x-budget-remaining"] == "20"
    r = post(url, secret, encode_images(images[:30]))
    assert r.status_code == 429 and r.headers["x-budget-remaining"] == "20"
    reopened = KeyStore(tmp_path / "keys.sqlite")  # as a restarted server would
    assert [(k.key_id, k.used, k.remaining) for k in reopened.list()] == [(key_id, 30, 20)]


def test_rate_limit_is_429_with_retry_after(keys):
    _, secret = keys.create("fast", budget=10_000)
    with serve_in_thread(fake_box(), keys=keys, limits=Limits(rate=1.0, burst=3)) as url:
        codes = [httpx.get(f"{url}/info", headers={"X-API-Key": secret}).status_code for _ in range(6)]
        r = httpx.get(f"{url}/info", headers={"X-API-Key": secret})
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
    assert r.status_code == 429 and r.headers["retry-after"] == "1"


def test_docs_and_openapi_are_off_and_health_needs_no_key(api):
    url, _, _ = api
    assert [httpx.get(f"{url}{p}").status_code for p in ("/docs", "/redoc", "/openapi.json")] == [404] * 3
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}


def test_a_bug_is_a_500_without_traceback_logged_server_side_and_refunded(keys, caplog):
    _, secret = keys.create("a", budget=10)

    class Broken:
        output_kind, input_size = fake_box().output_kind, SIZE

        def query(self, images):
            raise ZeroDivisionError("secret internals")

    with caplog.at_level(logging.ERROR), serve_in_thread(Broken(), keys=keys) as url:
        r = post(url, secret, encode_images(population(k=1)[0][:4]))
    assert r.status_code == 500 and "secret" not in r.text and "Traceback" not in r.text
    assert any("secret internals" in str(rec.exc_info) for rec in caplog.records)
    assert keys.list()[0].used == 0


def test_served_log_counts_each_answered_image(keys):
    _, secret = keys.create("a", budget=100)
    served = Counter()
    images = population(k=1)[0][:7]
    with serve_in_thread(fake_box(), keys=keys, served=served) as url:
        post(url, secret, encode_images(images))
    assert sum(served.values()) == 7 and len(served) == 7


def test_an_unexpected_bug_anywhere_is_a_bare_500(keys):
    _, secret = keys.create("a", budget=10)

    class BadInfo:
        input_size = SIZE

        @property
        def output_kind(self):
            raise KeyError("secret internals")

    with serve_in_thread(BadInfo(), keys=keys) as url:
        r = httpx.get(f"{url}/info", headers={"X-API-Key": secret})
    assert r.status_code == 500 and r.json() == {"detail": "internal server error"}


def test_keys_cli_create_list_revoke(tmp_path):
    from typer.testing import CliRunner

    from faceleaks.cli.main import app

    db = str(tmp_path / "k.sqlite")
    made = CliRunner().invoke(app, ["keys", "create", "--keys", db, "--name", "ana", "--budget", "7"])
    secret = made.output.strip().splitlines()[-1]
    store = KeyStore(db)
    record = store.check(secret)
    assert made.exit_code == 0 and (record.name, record.budget) == ("ana", 7)
    listed = CliRunner().invoke(app, ["keys", "list", "--keys", db])
    assert record.key_id in listed.output and secret not in listed.output
    assert CliRunner().invoke(app, ["keys", "revoke", record.key_id, "--keys", db]).exit_code == 0
    with pytest.raises(Exception, match="revoked"):
        store.check(secret)
    bad = CliRunner().invoke(app, ["keys", "revoke", "nope", "--keys", db])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
