"""Attacks against a student served by a real uvicorn server, through the httpx client."""

import numpy as np
import pytest

from faceleaks.attacks.registry import create_attack
from faceleaks.errors import QueryError
from faceleaks.serving.http import HttpBlackBox, serve_in_thread
from faceleaks.serving.perturb import LabelOnlyBlackBox
from faceleaks.serving.wrappers import CachingBlackBox, CountingBlackBox
from tests.fakes import fake_box, population, references


def test_http_box_returns_what_the_local_box_returns():
    local = fake_box()
    images = population(k=3)[0]
    with serve_in_thread(local, name="fake") as url:
        remote = HttpBlackBox(url, batch_size=16)
        assert remote.output_kind is local.output_kind and remote.input_size == local.input_size
        np.testing.assert_allclose(remote.query(images).values, local.query(images).values, rtol=1e-6)
        labels = LabelOnlyBlackBox(local)
    with serve_in_thread(labels) as url:
        np.testing.assert_array_equal(HttpBlackBox(url).query(images).values, labels.query(images).values)


def test_attack_over_http_scores_like_in_process():
    local = fake_box()
    attack = create_attack("threshold", feature="compactness", level="identity", k=5)
    images, idents, iids, _ = population(k=5)
    with serve_in_thread(local) as url:
        remote = HttpBlackBox(url)
        attack.fit(references(remote, fake_box(seed=1)))
        over_http = attack.score(remote, images, identity_ids=idents, image_ids=iids)
    attack.fit(references(local, fake_box(seed=1)))
    in_process = attack.score(local, images, identity_ids=idents, image_ids=iids)
    np.testing.assert_allclose(over_http.scores, in_process.scores, rtol=1e-5, atol=1e-6)


def test_server_failing_mid_audit_is_a_clear_error_and_answers_are_kept():
    calls = {"n": 0}
    inner = fake_box()

    class Flaky:
        output_kind = inner.output_kind
        input_size = inner.input_size

        def query(self, images):
            calls["n"] += 1
            if calls["n"] > 2:
                raise RuntimeError("model crashed")
            return inner.query(images)

    images = population(k=3)[0]
    with serve_in_thread(Flaky(), name="flaky") as url:
        counting = CountingBlackBox(HttpBlackBox(url, batch_size=20, retries=2))
        box = CachingBlackBox(counting)
        first = box.query(images[:40]).values  # two batches: answered
        with pytest.raises(QueryError, match="after 0 of"):
            box.query(images[40:80])
        again = box.query(images[:40]).values  # kept by the attacker's cache, nothing re-sent
    np.testing.assert_array_equal(first, again)
    assert counting.n_queries == 40


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(QueryError, match="failed after 2 attempts"):
        HttpBlackBox("http://127.0.0.1:9", retries=2, timeout=1)
