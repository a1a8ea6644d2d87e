"""The client against the real server: one-line errors, faults, the ledger (resume, sharing), the JSON adapter."""

import base64
import signal
import time
import io
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI, Request
from PIL import Image

from faceleaks.errors import QueryBudgetExceeded, QueryError
from faceleaks.serving.client import HttpBlackBox
from faceleaks.serving.json_api import JsonApiAdapter, jpeg_base64
from faceleaks.serving.keys import KeyStore
from faceleaks.serving.ledger import Ledger, image_hashes
from faceleaks.serving.server import Faults, run_in_thread, serve_in_thread
from faceleaks.serving.wire import Limits
from tests.fakes import SIZE, fake_box, fake_posteriors, population

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def keys(tmp_path):
    store = KeyStore(tmp_path / "keys.sqlite")
    yield store
    store.close()


def test_each_refusal_is_one_line_for_the_user(keys):
    _, secret = keys.create("a", budget=10)
    images = population(k=1)[0][:20]
    with serve_in_thread(fake_box(), keys=keys) as url:
        with pytest.raises(QueryError, match="needs an API key") as e401:
            HttpBlackBox(url)
        with pytest.raises(QueryError, match="refused the API key") as e403:
            HttpBlackBox(url, key="fl_wrong")
        box = HttpBlackBox(url, key=secret, batch_size=8)
        with pytest.raises(QueryBudgetExceeded, match="429") as e429:
            box.query(images)
    for err in (e401, e403, e429):
        assert "\n" not in str(err.value)
    assert "after 8 of the 20 new images" in str(e429.value) and box.remaining == 2


def test_oversized_batches_follow_the_servers_max_batch(keys):
    _, secret = keys.create("a", budget=1000)
    served = Counter()
    with serve_in_thread(fake_box(), keys=keys, limits=Limits(max_batch=16), served=served) as url:
        box = HttpBlackBox(url, key=secret, batch_size=64)
        box.query(population(k=1)[0])
    assert box.batch_size == 16 and box.n_requests == 3 and sum(served.values()) == 40


def test_a_server_failing_10_percent_of_requests_gives_identical_results(keys):
    _, secret = keys.create("a", budget=100_000)
    images = population(k=6)[0]
    with serve_in_thread(fake_box(), keys=keys, faults=Faults(rate=0.1, delay=1.0, seed=3)) as url:
        box = HttpBlackBox(url, key=secret, batch_size=8, timeout=0.5, backoff=0.01, retries=20)
        got = box.query(images).values
    np.testing.assert_array_equal(got, fake_box().query(images).values)
    assert box.n_requests == 30 and box.n_retries >= 1  # each batch answered once; faults were retried


def test_ledger_answers_are_never_sent_again(keys, tmp_path):
    _, secret = keys.create("a", budget=1000)
    images = population(k=4)[0]
    served = Counter()
    with serve_in_thread(fake_box(), keys=keys, served=served) as url:
        first = HttpBlackBox(url, key=secret, batch_size=16, ledger=Ledger(tmp_path / "l.sqlite", url))
        a = first.query(images[:100]).values
        again = HttpBlackBox(url, key=secret, batch_size=16, ledger=Ledger(tmp_path / "l.sqlite", url))
        b = again.query(images).values  # 100 from the ledger, 60 sent
    assert again.n_from_ledger == 100 and again.n_sent == 60
    assert max(served.values()) == 1 and sum(served.values()) == 160
    np.testing.assert_array_equal(a, b[:100])


_WORKER = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {root!r})
    from faceleaks.serving.client import HttpBlackBox
    from faceleaks.serving.ledger import Ledger, image_hashes
    from tests.fakes import population
    url, secret, path, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    images = population(k=6)[0]
    order = np.random.default_rng(seed).permutation(len(images))
    box = HttpBlackBox(url, key=secret, batch_size=4, ledger=Ledger(path, url))
    for part in np.array_split(order, 20):
        box.query(images[part])
    print(box.n_sent)
""")


def test_two_processes_sharing_a_ledger_do_not_corrupt_it(keys, tmp_path):
    _, secret = keys.create("a", budget=100_000)
    path = tmp_path / "shared.sqlite"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.format(root=str(ROOT)))
    with serve_in_thread(fake_box(), keys=keys) as url:
        procs = [subprocess.Popen([sys.executable, str(script), url, secret, str(path), str(s)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for s in (1, 2)]
        outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    ledger = Ledger(path, url)
    images = population(k=6)[0]
    assert ledger.check() == "ok" and ledger.count() == len(images)
    stored = ledger.get(image_hashes(images))
    np.testing.assert_array_equal(np.stack([stored[h] for h in image_hashes(images)]), fake_box().query(images).values)


def _json_api() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/predict")
    async def predict(request: Request) -> dict:
        data = await request.json()
        if request.headers.get("authorization") != "Bearer k":
            return {"error": "no"}
        images = np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(s))).convert("RGB"))
                           for s in data["inputs"]])
        return {"out": {"probs": fake_posteriors(images).tolist()}}

    return app


def test_json_api_adapter_sends_base64_jpeg_and_reads_the_configured_field(tmp_path):
    config = tmp_path / "api.toml"
    config.write_text('path = "/v1/predict"\nimages_field = "inputs"\noutput_field = "out.probs"\n'
                      f'input_size = {SIZE}\nkey_header = "Authorization"\nkey_prefix = "Bearer "\n'
                      'jpeg_quality = 100\nmax_batch = 5\n')
    images = population(k=2)[0][:12]
    with run_in_thread(_json_api()) as url:
        box = HttpBlackBox(url, key="k", adapter=JsonApiAdapter.from_file(config))
        got = box.query(images).values
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(jpeg_base64(im, 100))))) for im in images])
    assert box.n_requests == 3  # batches of max_batch = 5
    np.testing.assert_allclose(got, fake_posteriors(decoded), rtol=1e-6)


def test_json_api_config_with_an_unknown_key_is_a_config_error(tmp_path):
    config = tmp_path / "api.json"
    config.write_text('{"imagez": "x"}')
    with pytest.raises(Exception, match="unknown key 'imagez'"):
        JsonApiAdapter.from_file(config)


class _Slow:
    """The fake student, 50 ms per batch: slow enough to be killed mid-way."""

    output_kind, input_size = fake_box().output_kind, SIZE

    def query(self, images):
        time.sleep(0.05)
        return fake_box().query(images)


def test_a_client_killed_mid_way_resends_only_the_batch_in_flight(keys, tmp_path):
    _, secret = keys.create("a", budget=100_000)
    path, script = tmp_path / "l.sqlite", tmp_path / "worker.py"
    script.write_text(_WORKER.format(root=str(ROOT)))
    served = Counter()
    with serve_in_thread(_Slow(), keys=keys, served=served) as url:
        proc = subprocess.Popen([sys.executable, str(script), url, secret, str(path), "1"], stdout=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while (not path.exists() or Ledger(path, url).count() < 40) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        held = Ledger(path, url).count()
        again = subprocess.run([sys.executable, str(script), url, secret, str(path), "1"], capture_output=True,
                               text=True, timeout=120)
    images = population(k=6)[0]
    assert 40 <= held < len(images) and again.returncode == 0
    assert int(again.stdout) <= len(images) - held + 4  # what the ledger lacked, plus at most the batch in flight
    twice = [h for h, n in served.items() if n > 1]
    assert len(twice) <= 4 and sum(served.values()) == len(images) + len(twice)
    stored = Ledger(path, url).get(image_hashes(images))
    np.testing.assert_array_equal(np.stack([stored[h] for h in image_hashes(images)]), fake_box().query(images).values)


def test_a_refused_body_is_a_one_line_query_error(keys):
    _, secret = keys.create("a", budget=1000)
    with serve_in_thread(fake_box(), keys=keys, limits=Limits(max_body=1000)) as url:
        box = HttpBlackBox(url, key=secret)
        with pytest.raises(QueryError, match=r"refused the query \(413: body of \d+ bytes") as err:
            box.query(population(k=1)[0][:10])
    assert "\n" not in str(err.value) and type(err.value) is QueryError
