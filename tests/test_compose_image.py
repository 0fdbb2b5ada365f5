"""The image our services share, the migrations before the bridge, the environment of
.env.example, and the real tools (promtool, amtool) accepting the configs the containers read,
checked statically (no Docker engine here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import dockerfile

from passiton_monitoring.cli import build_parser
from tests.compose_support import ENV_EXAMPLE, OUR_IMAGE, REPO, SERVICES, environment, flags, mounts

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


# --- migrations, the image and the environment -------------------------------------------------


def test_migrations_run_before_the_bridge() -> None:
    assert SERVICES["migrate"]["command"] == ["migrate"]
    assert SERVICES["migrate"]["restart"] == "no"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["bridge"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert environment("bridge")["BRIDGE_AUTO_MIGRATE"] == "false"
    assert environment("migrate")["DATABASE_URL"] == environment("bridge")["DATABASE_URL"]


def test_our_services_share_one_image_and_run_real_subcommands() -> None:
    images = {SERVICES[name]["image"] for name in OUR_IMAGE}
    assert len(images) == 1
    parser = build_parser()
    for name in OUR_IMAGE:
        assert SERVICES[name]["build"]["context"] == "."
        args = parser.parse_args(SERVICES[name]["command"])
        assert args.command == SERVICES[name]["command"][0]


def dockerfile_stages() -> list[list[dockerfile.Command]]:
    """The Dockerfile's instructions (BuildKit's own parser), split into build stages."""
    stages: list[list[dockerfile.Command]] = []
    for command in dockerfile.parse_file(str(REPO / "Dockerfile")):
        if command.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(command)
    return stages


def test_dockerfile_is_multi_stage_non_root_with_the_console_script() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    names = [stage[0].value[2] for stage in stages]
    runtime = stages[-1]
    assert [c.value for c in runtime if c.cmd == "COPY" and f"--from={names[0]}" in c.flags], (
        "the runtime stage copies the build stage's result"
    )
    assert not [c for c in runtime if c.cmd == "RUN" and "pip install" in c.value[0]]
    users = [c.value[0] for c in runtime if c.cmd == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    (entrypoint,) = [c for c in runtime if c.cmd == "ENTRYPOINT"]
    assert entrypoint.json
    assert entrypoint.value == ("passiton-monitoring",)
    # the console script the image runs is the one the distribution installs
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'passiton-monitoring = "passiton_monitoring.cli:main"' in pyproject


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for command in dockerfile_stages()[-1]:
        if command.cmd == "ENV":
            env.update(zip(command.value[::2], command.value[1::2], strict=True))
    return env


def test_dockerignore_keeps_the_build_context_small() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is excluded unless named"
    allowed = {line.lstrip("!").rstrip("/") for line in lines if line.startswith("!")}
    sources = {
        source
        for stage in dockerfile_stages()
        for c in stage
        if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags)
        for source in c.value[:-1]
    }
    assert sources == {
        "pyproject.toml",
        "README.md",
        "exporter",
        "bridge",
        "console",
        "passiton_common",
        "passiton_monitoring",
    }
    assert sources <= allowed, "the Dockerfile copies something .dockerignore excludes"


def test_env_example_lists_every_variable() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    referenced = set(_VAR.findall(text))
    assert referenced == set(ENV_EXAMPLE), (
        "in docker-compose.yml but not .env.example: "
        f"{sorted(referenced - set(ENV_EXAMPLE))}; "
        f"in .env.example but unused: {sorted(set(ENV_EXAMPLE) - referenced)}"
    )
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    first_cells = [row.split("|")[1] for row in table.splitlines() if row.startswith("| `")]
    documented = {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}
    assert len(documented) > 20
    example = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.M))
    assert documented <= listed, f"missing from .env.example: {sorted(documented - listed)}"
    # a variable Compose fixes itself is listed as a comment, and really fixed
    for name in listed - set(ENV_EXAMPLE):
        fixed = [s for s in OUR_IMAGE if name in (SERVICES[s].get("environment") or {})]
        in_image = name in image_env()
        assert fixed or in_image, f"{name} is said to be set by Compose but is not"


# --- the real tools accept what the containers read --------------------------------------------


def test_promtool_accepts_the_compose_prometheus_config(tmp_path: Path) -> None:
    """Laid out as the container sees it: the config with the rules directory beside it."""
    config_path = PurePosixPath(flags("prometheus")["config.file"])
    root = tmp_path / "etc"
    root.mkdir()
    for target, source in mounts("prometheus").items():
        if source.startswith("./") and PurePosixPath(target).parent == config_path.parent:
            dest = root / PurePosixPath(target).name
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, dest)
            else:
                shutil.copy(REPO / source, dest)
    result = subprocess.run(
        ["promtool", "check", "config", str(root / config_path.name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rule_files = len(list((REPO / "prometheus/rules").glob("*.yml")))
    assert f"SUCCESS: {rule_files} rule files found" in result.stdout + result.stderr


def test_amtool_accepts_the_compose_alertmanager_config() -> None:
    result = subprocess.run(
        ["amtool", "check-config", str(REPO / "deploy/compose/alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
