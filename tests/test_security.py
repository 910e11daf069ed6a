"""Security: no pickle, no api key in reprs/logs/errors/warnings, no path traversal.

* The package source (shared/, llama_index_ext/, langchain_ext/) never imports a
  pickle-family module and never loads with pickle enabled (checked on the AST, so
  comments and strings do not count, and the checker itself is tested).
* The api key given to the core store and to both adapters' stores never appears
  in a repr/str, a log record (any level), a warning, or an error message — while
  the key demonstrably reaches the server (a loopback HTTP server records it).
* Collection names that would escape the chosen directory or are not valid names
  ("../x", "a/b", absolute, NUL, ...) are refused with InvalidInputError on both
  backends before anything is created, and nothing appears outside the directory.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shared.errors import BackendError, InvalidInputError
from shared.store import HybridStore

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("shared", "llama_index_ext", "langchain_ext")
SECRET = "sk-TEST-9f8e7d6c5b4a"

# -- no pickle ---------------------------------------------------------------------------

PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def pickle_findings(source: str, filename: str = "<src>") -> list[str]:
    """Every pickle-family import and every load call that can unpickle, as 'file:line what'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PICKLE_MODULES:
                    found.append(f"{filename}:{node.lineno} import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.module and node.module.split(".")[0] in PICKLE_MODULES:
                found.append(f"{filename}:{node.lineno} from {node.module} import")
        elif isinstance(node, ast.Call):
            func = node.func
            name = ast.unparse(func)
            if name.endswith("read_pickle") or name.endswith("load_pickle"):
                found.append(f"{filename}:{node.lineno} {name}()")
            elif name == "torch.load" and not _is_true(_kw(node, "weights_only")):
                found.append(f"{filename}:{node.lineno} torch.load without weights_only=True")
            elif name in ("np.load", "numpy.load") and _is_true(_kw(node, "allow_pickle")):
                found.append(f"{filename}:{node.lineno} {name}(allow_pickle=True)")
            elif isinstance(func, ast.Attribute) and func.attr == "from_pretrained":
                # transformers falls back to pickled .bin weights unless told to use safetensors
                use = _kw(node, "use_safetensors")
                if isinstance(use, ast.Constant) and use.value is False:
                    found.append(f"{filename}:{node.lineno} from_pretrained(use_safetensors=False)")
    return found


def package_files() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 20  # the scan really covers the packages
    return files


def test_no_pickle_anywhere_in_the_packages() -> None:
    findings = [
        f for p in package_files() for f in pickle_findings(p.read_text("utf-8"), str(p.relative_to(ROOT)))
    ]
    assert findings == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle",
        "import cloudpickle as cp",
        "from dill import loads",
        "import joblib",
        "import torch\nstate = torch.load(path)",
        "import torch\nstate = torch.load(path, weights_only=False)",
        "import numpy as np\nx = np.load(p, allow_pickle=True)",
        "import pandas as pd\ndf = pd.read_pickle(p)",
        "m = AutoModel.from_pretrained(p, use_safetensors=False)",
    ],
)
def test_the_pickle_scan_catches_each_pattern(snippet: str) -> None:
    assert pickle_findings(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        "# we never use pickle here",
        "x = 'pickle'",
        "import torch\nstate = torch.load(path, map_location='cpu', weights_only=True)",
        "import numpy as np\nx = np.load(p, allow_pickle=False)",
    ],
)
def test_the_pickle_scan_allows_safe_code(snippet: str) -> None:
    assert pickle_findings(snippet) == []


# -- api key -----------------------------------------------------------------------------


class KeyRecorder:
    """Loopback HTTP server: records the api-key header; "exists" says no, /fail answers 500."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                if self.headers.get("api-key"):
                    recorder.keys.append(self.headers["api-key"])
                path = self.path.split("?")[0]
                if path == "/":
                    code, body = 200, {"title": "qdrant", "version": "1.20.0"}
                elif path.endswith("/exists"):
                    code, body = 200, {"result": {"exists": False}, "status": "ok", "time": 0.0}
                else:
                    code, body = 500, {"status": {"error": "boom"}, "time": 0.0}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[KeyRecorder]:
    srv = KeyRecorder()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _core(url: str) -> Any:
    return HybridStore("sec", url=url, api_key=SECRET, timeout=2)


def _llama(url: str) -> Any:
    from llama_index_ext.vector_store import HybridQdrantVectorStore

    return HybridQdrantVectorStore("sec", url=url, api_key=SECRET, timeout=2)


def _langchain(url: str) -> Any:
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from langchain_ext.vectorstores import HybridQdrantVectorStore

    return HybridQdrantVectorStore(
        DeterministicFakeEmbedding(size=8), collection_name="sec", url=url, api_key=SECRET, timeout=2
    )


def _texts_of(obj: Any) -> list[str]:
    out = [repr(obj), str(obj)]
    for attr in ("model_dump", "to_dict", "to_json", "dict"):
        fn = getattr(obj, attr, None)
        if callable(fn):
            try:
                out.append(str(fn()))
            except Exception as exc:  # not all of them apply to every class
                out.append(str(exc))
    inner = getattr(obj, "_store", None)
    if inner is not None:
        out += [repr(inner), repr(getattr(inner, "_backend", None))]
    return out


def _fail_somehow(store: Any) -> list[str]:
    """A write that reaches the server and fails there (500); return the error's texts."""
    from shared.types import Record

    core = store if isinstance(store, HybridStore) else store._store
    with pytest.raises(BackendError) as info:
        core.add([Record(id="a", text="t", dense=[1.0] * 8)])
    return [str(info.value), repr(info.value), str(info.value.__cause__), repr(info.value.__cause__)]


# A client created lazily may check the server version after the server is gone.
@pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning")
@pytest.mark.parametrize("make", [_core, _llama, _langchain], ids=["HybridStore", "llama_index", "langchain"])
def test_api_key_never_leaks(server: KeyRecorder, make: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = make(server.url)
        texts = _texts_of(store)
        texts += _fail_somehow(store)
        store.close()
    assert SECRET in server.keys  # the key was really used: the check below is not vacuous
    texts += [r.getMessage() for r in caplog.records] + [str(w.message) for w in caught]
    assert caplog.records  # logging did run (retries, httpx requests)
    leaks = [t[:200] for t in texts if SECRET in t]
    assert leaks == []


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_api_key_never_in_connection_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BackendError) as info:
        HybridStore("sec", url="http://127.0.0.1:9", api_key=SECRET, timeout=1, dense_dim=4)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    with pytest.raises(InvalidInputError) as info2:
        HybridStore("sec", api_key=SECRET)  # an api key without a server
    assert SECRET not in str(info2.value)


# -- collection names and paths ------------------------------------------------------------

BAD_NAMES = [
    "../x",
    "../../etc",
    "a/b",
    "/abs",
    "/",
    "a\\b",
    "..\\x",
    ".",
    "..",
    "a\x00b",
    "",
    "x" * 256,
    "é" * 200,
]


def _name_id(name: str) -> str:
    return repr(name[:10]) + (f"+{len(name) - 10}" if len(name) > 10 else "")


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", BAD_NAMES, ids=_name_id)
def test_bad_collection_names_are_refused_on_the_embedded_store(tmp_path: Path, name: str) -> None:
    base = tmp_path / "stores"
    base.mkdir()
    (tmp_path / "outside").mkdir()
    before = _tree(tmp_path)
    with pytest.raises(InvalidInputError) as info:
        HybridStore(name, path=base, dense_dim=4)
    assert "collection_name" in str(info.value)
    assert _tree(tmp_path) == before  # nothing created anywhere


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", BAD_NAMES, ids=_name_id)
def test_bad_collection_names_are_refused_on_the_remote_store(tmp_path: Path, name: str) -> None:
    from qdrant_client import QdrantClient

    base = tmp_path / "db"
    client = QdrantClient(path=str(base))  # local mode keeps collections in directories too
    try:
        before = _tree(tmp_path)
        with pytest.raises(InvalidInputError) as info:
            HybridStore(name, client=client, dense_dim=4)
        assert "collection_name" in str(info.value)
        assert _tree(tmp_path) == before
    finally:
        client.close()


@pytest.mark.parametrize(
    "name", ["docs", "my-collection_2", "Ünïcode", "with space", "a.b", "x" * 255], ids=_name_id
)
def test_ordinary_collection_names_work_and_stay_inside(tmp_path: Path, name: str) -> None:
    base = tmp_path / "stores"
    with HybridStore(name, path=base, dense_dim=4) as s:
        from shared.types import Record

        s.add([Record(id="1", dense=[1.0, 0, 0, 0])])
        assert s.count() == 1
    assert os.listdir(tmp_path) == ["stores"]
    assert os.listdir(base) == [name]
