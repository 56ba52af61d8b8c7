"""The operator image's layer and config: what is collected, what is left out, how it starts."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

from chaos.images import operator as operator_image
from chaos.images.node import Tree


def test_add_directory_keeps_links_and_leaves_out_named_top_directories(tmp_path: Path) -> None:
    stdlib = tmp_path / "usr/lib/python3.11"
    (stdlib / "json").mkdir(parents=True)
    (stdlib / "json/__init__.py").write_text("")
    (stdlib / "test").mkdir()
    (stdlib / "test/test_json.py").write_text("")
    os.symlink("json", stdlib / "alias")
    tree = Tree()
    operator_image.add_directory(tmp_path, "usr/lib/python3.11", tree, ("test",))
    assert list(tree.files) == ["usr/lib/python3.11/json/__init__.py"]
    assert tree.links == {"usr/lib/python3.11/alias": "json"}


def test_image_runs_the_operator_as_an_unprivileged_user(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text("print('hi')\n")
    tree = Tree(files={"app/src/hello.py": tmp_path / "hello.py"})
    data = operator_image.image_archive(tree, "chaosdrill.local/operator:test",
                                        operator_image.OPERATOR_CONFIG)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["chaosdrill.local/operator:test"]
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["Entrypoint"][-2:] == ["chaos", "operator"]
    assert "PYTHONPATH=/app/src:/app/lib" in config["config"]["Env"]
    assert data == operator_image.image_archive(tree, "chaosdrill.local/operator:test",
                                        operator_image.OPERATOR_CONFIG)
