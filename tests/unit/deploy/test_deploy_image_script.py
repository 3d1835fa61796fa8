"""hack/image.sh's choices, from its functions (the script only defines them when sourced):
debootstrap's mirror from the apt sources, and pip's settings for the build."""

from __future__ import annotations

import subprocess
from pathlib import Path

from deploy_paths import ROOT

SCRIPT = ROOT / "hack" / "image.sh"

SOURCES = """\
Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://backports.example/debian
Suites: bookworm-backports
Components: main
"""


def bash(snippet: str, **env: str) -> str:
    """``snippet`` run after sourcing the script; its stdout."""
    result = subprocess.run(
        ["bash", "-c", f'source "$1"\n{snippet}', "bash", str(SCRIPT)],
        capture_output=True, text=True, timeout=30, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **env},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_mirror_is_the_one_apt_uses_for_the_suite(tmp_path: Path) -> None:
    (tmp_path / "debian.sources").write_text(SOURCES)
    (tmp_path / "sources.list").write_text("deb http://list.example/debian bookworm main\n")
    (tmp_path / "other.list").write_text("deb http://ubuntu.example/ubuntu jammy main\n")
    files = tmp_path / "debian.sources", tmp_path / "sources.list"
    # Not the security suite's URI that comes first, and not printed twice (the stanza's end and
    # the file's end both close the stanza).
    assert bash(f"apt_mirror {files[0]} {files[1]}") == "http://mirror.example/debian\n"
    assert bash(f"apt_mirror {tmp_path / 'missing.sources'} {files[1]}") == "http://list.example/debian\n"
    assert bash(f"apt_mirror {tmp_path / 'other.list'}") == ""


def test_without_apt_sources_the_mirror_is_debians_default_or_the_variable() -> None:
    # mirror() reads /etc/apt; DEBIAN_MIRROR wins over whatever it holds.
    assert (
        bash("mirror", DEBIAN_MIRROR="http://override.example/debian") == "http://override.example/debian\n"
    )


def test_pips_network_settings_reach_the_build_with_the_files_they_name(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("a CA\n")
    settings = "\n".join(
        [
            ":env:.cert='" + str(bundle) + "'",
            ":env:.default-timeout='180'",
            "global.cert='/etc/elsewhere.pem'",
            "global.index-url='https://index.example/simple'",
            "global.find-links='/no/such/folder'",
            "global.require-virtualenv='true'",
            "install.user='true'",
        ]
    )
    conf = tmp_path / "pip.conf"
    mounts = bash(f"pip_settings() {{ cat <<'EOF'\n{settings}\nEOF\n}}\npip_build_mounts {conf}")
    section, *written = conf.read_text().splitlines()
    # A variable wins over a file; settings that are not about reaching the index stay out
    # (require-virtualenv would stop the build's `pip wheel`, which runs outside a virtualenv).
    assert section == "[global]"
    assert sorted(written) == [
        f"cert = {bundle}",
        "default-timeout = 180",
        "find-links = /no/such/folder",
        "index-url = https://index.example/simple",
    ]
    # The CA bundle is mounted where the settings say; a folder that does not exist is not.
    assert mounts.splitlines() == [f"{conf}:/etc/pip.conf:ro", f"{bundle}:{bundle}:ro"]
