"""The model manager: registration, verified fetches, ONNX sessions per device, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from meiyan.cli.main import main
from meiyan.errors import ModelError
from meiyan.models import (
    ModelSpec,
    download,
    fetch,
    get_spec,
    model_path,
    names,
    onnx_session,
    providers,
    register,
    sha256_file,
    unavailable,
    unregister,
)


def spec(name: str, filename: str, sha256: str, url: str | None = None) -> ModelSpec:
    return ModelSpec(name, filename, sha256, 15, "MIT", "made by the test", True, "test/x", url=url)


def test_download_accepts_a_good_file_and_rejects_a_wrong_digest(tmp_path: Path) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(b"meiyan" * 1000)
    digest = sha256_file(src)
    by_path = download(str(src), tmp_path / "cache" / "a.bin", digest)
    by_url = download(src.as_uri(), tmp_path / "cache" / "b.bin", digest)
    assert by_path.read_bytes() == by_url.read_bytes() == src.read_bytes()
    with pytest.raises(ModelError, match="SHA-256"):
        download(src.as_uri(), tmp_path / "cache" / "c.bin", "0" * 64)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["a.bin", "b.bin"]
    with pytest.raises(ModelError, match="cannot"):
        download((tmp_path / "missing.bin").as_uri(), tmp_path / "cache" / "d.bin", digest)


def test_fetch_installs_into_the_cache_and_nothing_downloads_implicitly(
    tmp_path: Path, monkeypatch
) -> None:
    src = tmp_path / "tiny.onnx"
    src.write_bytes(b"not really onnx")
    monkeypatch.setenv("MEIYAN_MODELS", str(tmp_path / "models"))
    register(spec("test-tiny", "test_tiny.onnx", sha256_file(src), url=src.as_uri()))
    register(spec("test-none", "test_none.onnx", "0" * 64))
    try:
        assert "not installed" in unavailable("test-tiny")
        with pytest.raises(ModelError, match="meiyan models fetch test-tiny"):
            model_path("test-tiny")  # never downloads by itself
        path = fetch("test-tiny")
        assert path == tmp_path / "models" / "test_tiny.onnx"
        assert unavailable("test-tiny") is None
        src.unlink()  # a second lookup uses the cached, verified copy
        assert model_path("test-tiny") == path
        path.write_bytes(b"tampered")
        with pytest.raises(ModelError, match="SHA-256"):
            model_path("test-tiny")
        with pytest.raises(ModelError, match="no download URL"):
            fetch("test-none")
    finally:
        unregister("test-tiny")
        unregister("test-none")
    assert "test-tiny" not in names()


def test_shipped_and_mediapipe_models_are_registered_and_verified() -> None:
    path = model_path("skin-unet")
    assert path.parent.name == "models" and path.stat().st_size == get_spec("skin-unet").size
    assert path.with_suffix(".md").is_file()
    assert not get_spec("skin-unet").commercial  # FASSEG: research use only
    mediapipe = [n for n in names() if n.startswith("mediapipe-")]
    assert len(mediapipe) == 4
    for name in mediapipe:
        assert model_path(name).stat().st_size == get_spec(name).size


def test_sessions_are_cached_per_device_and_cuda_is_a_clear_error() -> None:
    a = onnx_session("skin-unet", device="cpu")
    assert onnx_session("skin-unet", device="cpu") is a
    assert a.get_providers()[0] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" not in providers("auto"):
        with pytest.raises(ModelError, match="no CUDAExecutionProvider"):
            providers("cuda")
        assert onnx_session("skin-unet", device="auto").get_providers()[0] == (
            "CPUExecutionProvider"
        )
    with pytest.raises(ModelError, match="unknown device"):
        providers("tpu")


def test_models_command_lists_verifies_and_locates() -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    line = next(x for x in listed.output.splitlines() if x.startswith("skin-unet"))
    assert get_spec("skin-unet").sha256 in line and "NON-COMMERCIAL" in line
    assert "skin_unet.md" in line and "FASSEG" in line
    records = [
        json.loads(x) for x in runner.invoke(main, ["models", "list", "--json"]).output.splitlines()
    ]
    assert {r["name"] for r in records} == set(names())
    assert runner.invoke(main, ["models", "verify"]).exit_code == 0
    path = runner.invoke(main, ["models", "path", "skin-unet"])
    assert path.exit_code == 0 and path.output.strip().endswith("skin_unet.onnx")


def test_models_verify_exits_1_on_a_mismatch(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEIYAN_MODELS", str(tmp_path))
    (tmp_path / "bad.onnx").write_bytes(b"wrong")
    register(spec("test-bad", "bad.onnx", "1" * 64))
    try:
        result = CliRunner().invoke(main, ["models", "verify", "test-bad"])
    finally:
        unregister("test-bad")
    assert result.exit_code == 1 and "SHA-256" in result.output
