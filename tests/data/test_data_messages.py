"""What a user sees when MNIST is missing: the message, the folders left behind, the time limit.

No test here uses the network: the mirrors are pointed at local sockets (a closed
port, a server that accepts and never answers, one that trickles bytes).
"""
import hashlib
import os
import pathlib
import socket
import tempfile
import threading
import time

import pytest

from scratchgan.data import DataNotFoundError, load_mnist
from scratchgan.data import idx as idxmod

TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TIMEOUT_ENV = "SCRATCHGAN_DOWNLOAD_TIMEOUT"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private cache ($XDG_CACHE_HOME, not created), temp folder and no proxy."""
    monkeypatch.delenv("SCRATCHGAN_DATA", raising=False)
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp_path


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now: connection refused
    return port


@pytest.fixture
def silent_server():
    """A socket that accepts connections and never sends a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join(2)
    for c in conns:
        c.close()
    srv.close()


@pytest.fixture
def trickle_server():
    """Answers 200 with a 1 MB Content-Length, then sends one byte every 50 ms."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def serve(c):
        try:
            c.settimeout(2)
            c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            while not stop.is_set():
                c.sendall(b"x")
                time.sleep(0.05)
        except OSError:
            pass
        finally:
            c.close()

    def accept():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                c = srv.accept()[0]
            except OSError:
                continue
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join(2)
    srv.close()


def mirrors(monkeypatch, *bases):
    monkeypatch.setitem(idxmod.MIRRORS, "mnist", tuple(b.rstrip("/") + "/" for b in bases))
    return [b.rstrip("/") + "/" for b in bases]


def leftovers(root):
    """Every file and folder under ``root`` (relative paths)."""
    return sorted(str(p.relative_to(root)) for p in pathlib.Path(root).rglob("*"))


# ---------------------------------------------------------------------------- message
def test_failed_download_message_lists_data_dir_folders_and_urls(env, monkeypatch, capsys):
    port = closed_port()
    bases = mirrors(monkeypatch, f"http://127.0.0.1:{port}/one", f"http://127.0.0.1:{port}/two")
    monkeypatch.setenv("SCRATCHGAN_DATA", str(env / "shared"))
    monkeypatch.setenv(TIMEOUT_ENV, "5")
    given = env / "given"
    with pytest.raises(DataNotFoundError) as e:
        load_mnist("train", data_dir=given)
    msg = str(e.value)
    # every folder searched, the --data-dir the user gave first
    for d in (given, env / "shared", env / "xdg" / "scratchgan"):
        assert str(d / "mnist") in msg
    assert msg.index(str(given / "mnist")) < msg.index(str(env / "shared" / "mnist")) \
        < msg.index(str(env / "xdg" / "scratchgan" / "mnist"))
    assert "--data-dir" in msg and "SCRATCHGAN_DATA" in msg
    # every URL tried, with its error
    for b in bases:
        assert f"{b}{TRAIN[0]}: URLError" in msg
    assert "refused" in msg.lower()
    # no API-only advice for a command-line user
    assert "download=True" not in msg
    # the wait was announced on stderr, not silent
    err = capsys.readouterr().err
    assert f"downloading {bases[0]}{TRAIN[0]} (time limit 5 s)" in err


def test_offline_message_says_no_download_and_lists_sources(env):
    given = env / "given"
    (given).mkdir()
    for n in TRAIN:  # a common mistake: --data-dir pointing at the mnist folder itself
        (given / n).write_bytes(b"")
    with pytest.raises(DataNotFoundError) as e:
        load_mnist("train", data_dir=given, download=False)
    msg = str(e.value)
    assert str(given / "mnist") in msg and f"give its parent folder, {env}" in msg
    assert "No download was tried" in msg and "download=True" not in msg
    for base in idxmod.MIRRORS["mnist"]:
        assert base in msg
    assert leftovers(env) == ["given", f"given/{TRAIN[0]}", f"given/{TRAIN[1]}", "tmp"]


# -------------------------------------------------------------------- nothing left empty
@pytest.mark.parametrize("cache_parent_exists", [False, True])
def test_failed_download_creates_no_folder(env, monkeypatch, cache_parent_exists):
    port = closed_port()
    mirrors(monkeypatch, f"http://127.0.0.1:{port}/a", f"http://127.0.0.1:{port}/b")
    if cache_parent_exists:
        (env / "xdg").mkdir()
    with pytest.raises(DataNotFoundError):
        load_mnist("test")
    assert leftovers(env) == (["tmp", "xdg"] if cache_parent_exists else ["tmp"])


def test_md5_mismatch_creates_no_folder_and_no_temp_file(env, monkeypatch):
    def fetch(url, dest, timeout=None):
        dest.write_bytes(b"not the real file")

    monkeypatch.setattr(idxmod, "_fetch", fetch)
    with pytest.raises(DataNotFoundError, match="md5 mismatch"):
        idxmod.download_file("mnist", TRAIN[1])
    assert leftovers(env) == ["tmp"]


def test_successful_download_creates_the_folder_then(env, monkeypatch):
    payload = b"verified bytes"
    monkeypatch.setitem(idxmod.FILES["mnist"], TRAIN[1], hashlib.md5(payload).hexdigest())
    seen = []

    def fetch(url, dest, timeout=None):
        seen.append((pathlib.Path(dest).parent, timeout))
        assert not (env / "xdg").exists()  # nothing is created before the file is verified
        dest.write_bytes(payload)

    monkeypatch.setattr(idxmod, "_fetch", fetch)
    monkeypatch.setenv(TIMEOUT_ENV, "7.5")
    p = idxmod.download_file("mnist", TRAIN[1])
    assert p == env / "xdg" / "scratchgan" / "mnist" / TRAIN[1] and p.read_bytes() == payload
    assert seen == [(env / "tmp", 7.5)]  # fetched into the temp folder, env limit used
    assert leftovers(env) == ["tmp", "xdg", "xdg/scratchgan", "xdg/scratchgan/mnist",
                              f"xdg/scratchgan/mnist/{TRAIN[1]}"]


def test_unwritable_cache_removes_the_folders_it_made(env, monkeypatch):
    payload = b"verified bytes"
    monkeypatch.setitem(idxmod.FILES["mnist"], TRAIN[1], hashlib.md5(payload).hexdigest())
    monkeypatch.setattr(idxmod, "_fetch", lambda url, dest, timeout=None: dest.write_bytes(payload))

    def fail(src, dst, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(idxmod.shutil, "copyfile", fail)
    with pytest.raises(DataNotFoundError, match="cannot write.*No space left"):
        idxmod.download_file("mnist", TRAIN[1])
    assert leftovers(env) == ["tmp"]


# -------------------------------------------------------------------------- time limit
def test_time_limit_against_a_server_that_never_answers(env, monkeypatch, silent_server):
    bases = mirrors(monkeypatch, silent_server + "/one", silent_server + "/two")
    t0 = time.monotonic()
    with pytest.raises(DataNotFoundError) as e:
        load_mnist("train", data_dir=env / "given", timeout=0.4)
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0  # two mirrors at 0.4 s each, not two 30-second waits
    msg = str(e.value)
    for b in bases:
        assert f"{b}{TRAIN[0]}: timed out" in msg
    assert "time limit 0.4 s" in msg and TIMEOUT_ENV in msg
    assert leftovers(env) == ["tmp"]


def test_time_limit_from_the_environment(env, monkeypatch, silent_server):
    mirrors(monkeypatch, silent_server + "/only")
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    t0 = time.monotonic()
    with pytest.raises(DataNotFoundError, match="timed out"):
        load_mnist("train")
    assert time.monotonic() - t0 < 2.0


def test_time_limit_is_overall_not_per_read(env, monkeypatch, trickle_server):
    # a byte every 50 ms never trips a per-read timeout: only an overall limit stops it
    bases = mirrors(monkeypatch, trickle_server + "/slow")
    t0 = time.monotonic()
    with pytest.raises(DataNotFoundError) as e:
        load_mnist("train", timeout=0.6)
    elapsed = time.monotonic() - t0
    assert 0.5 < elapsed < 3.0
    assert f"{bases[0]}{TRAIN[0]}: timed out: time limit of 0.6 s reached" in str(e.value)
    assert leftovers(env) == ["tmp"]


@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf", "nan"])
def test_bad_time_limit_is_named(env, monkeypatch, value):
    monkeypatch.setenv(TIMEOUT_ENV, value)
    with pytest.raises(ValueError, match=r"\$SCRATCHGAN_DOWNLOAD_TIMEOUT"):
        idxmod.download_timeout()
    with pytest.raises(ValueError, match="timeout"):
        idxmod.download_timeout(value)
    assert idxmod.download_timeout(2) == 2.0


def test_local_download_end_to_end(env, monkeypatch, capsys):
    """A local HTTP server with a real body: the file arrives; the announcement and the
    progress bar (shown only on a terminal) go to stderr, stdout stays clean."""
    import http.server

    body = b"0123456789" * 1000
    monkeypatch.setitem(idxmod.FILES["mnist"], TRAIN[1], hashlib.md5(body).hexdigest())

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        mirrors(monkeypatch, f"http://127.0.0.1:{srv.server_address[1]}/d")
        p = idxmod.download_file("mnist", TRAIN[1], timeout=5)
    finally:
        srv.shutdown()
        srv.server_close()
    assert p.read_bytes() == body
    out = capsys.readouterr()
    assert out.out == "" and "downloading" in out.err
    assert leftovers(env) == ["tmp", "xdg", "xdg/scratchgan", "xdg/scratchgan/mnist",
                              f"xdg/scratchgan/mnist/{TRAIN[1]}"]
    assert os.stat(p).st_size == len(body)
