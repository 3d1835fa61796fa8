"""The Dockerfile and its dependency lock say what the issue asks, and agree with pyproject."""

from __future__ import annotations

import re
import tomllib

from deploy_paths import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
LOCK = (ROOT / "deploy" / "requirements.lock").read_text()


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[canonicalize_name(name)] = version
    return pins


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = locked()
    for line in project["dependencies"]:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, (
            f"{req.name} missing from deploy/requirements.lock: run hack/lock-requirements.py"
        )
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} outside {req.specifier}"
        )


def test_no_test_or_dev_tool_in_the_image() -> None:
    assert not {"pytest", "mypy", "ruff", "lupa", "hypothesis"} & set(locked())


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    stages = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, flags=re.MULTILINE)
    assert len(stages) == 2 and all(s == "${PYTHON_IMAGE}" for s in stages)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE
    assert re.search(r"^USER 65532:65532$", DOCKERFILE, flags=re.MULTILINE)
    assert "--constraint /tmp/requirements.lock" in DOCKERFILE
    assert DOCKERFILE.rstrip().splitlines()[-1] == 'ENTRYPOINT ["emrops", "run"]'


def test_build_context_contains_what_the_dockerfile_copies() -> None:
    ignore = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, flags=re.MULTILINE)
    sources = {s.rstrip("/") for line in copied for s in line.split()}
    assert sources <= allowed, sources - allowed


def test_the_license_the_metadata_names_is_in_the_repository() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in DOCKERFILE
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 200


def test_the_image_allocates_with_jemalloc_and_the_bench_reads_the_same_settings() -> None:
    """The image preloads jemalloc for every Python object (docs/performance.md, "The memory
    allocator"); the bench runs the operator with the variables it reads from here."""
    from bench.allocator import image_environment

    runtime = DOCKERFILE.split("\nFROM ", 2)[2]  # the runtime stage
    assert "apt-get install -y --no-install-recommends libjemalloc2" in runtime
    assert runtime.index("libjemalloc2") < runtime.index("USER 65532:65532"), "installed as root"
    # apt's lists and caches would add about 80 MB to the image (measured: 225 -> 303 MB).
    assert "apt-get clean" in runtime and "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin" in runtime
    env = image_environment()
    assert env["LD_PRELOAD"] == "/usr/local/lib/libjemalloc.so.2"
    assert "ln -s" in runtime and env["LD_PRELOAD"] in runtime.split("ENV LD_PRELOAD")[0]
    assert env["PYTHONMALLOC"] == "malloc", "else CPython keeps its own arenas and jemalloc sees little"
    conf = dict(item.split(":") for item in env["MALLOC_CONF"].split(","))
    # An idle operator allocates nothing, so only jemalloc's own thread returns the pages.
    assert conf["background_thread"] == "true"
