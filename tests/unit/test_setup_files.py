"""The set-up files agree with the Compose specification, with each other and with the code.

No Docker engine or conda runs here, so ``docker-compose.yml`` is validated against the
Compose specification's JSON schema as vendored in the ``check-jsonschema`` package (a
test dependency: nothing is downloaded while the tests run), and ``environment.yml`` is
checked against ``pyproject.toml``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from pydantic import SecretStr
from ruamel.yaml import YAML

from migrationkit._settings.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
CONDA_ENV = ROOT / "environment.yml"

#: ``$$``, ``${VAR}`` and ``${VAR:?message}``: the only interpolations the compose file uses.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?\?[^}]*)?\}|(?P<other>))"
)
_SECRET_KEY = re.compile(r"PASSWORD|TOKEN|SECRET", re.IGNORECASE)


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def env_example() -> dict[str, str]:
    """``KEY=VALUE`` lines of ``.env.example`` (comments and blank lines skipped)."""
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=VALUE: {line!r}"
            pairs[key.strip()] = value.strip()
    return pairs


def strings(node: Any) -> list[str]:
    """Every string value in a parsed YAML document (keys are not interpolated)."""
    if isinstance(node, dict):
        return [text for value in node.values() for text in strings(value)]
    if isinstance(node, list):
        return [text for value in node for text in strings(value)]
    return [node] if isinstance(node, str) else []


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Substitute ``${VAR}`` in every string value, as ``docker compose`` does before it
    validates the file; an undefined variable or another interpolation form is an error."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["name"] is None:
            raise AssertionError("use ${VAR} or ${VAR:?message} only, or $$ for a literal $")
        return env[match["name"]]

    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    return _INTERPOLATION.sub(substitute, node) if isinstance(node, str) else node


def variables_used(node: Any) -> set[str]:
    return {
        match["name"]
        for text in strings(node)
        for match in _INTERPOLATION.finditer(text)
        if match["name"]
    }


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE)
    return document


@pytest.fixture(scope="module")
def resolved(compose: dict[str, Any]) -> dict[str, Any]:
    """The compose file as ``docker compose`` sees it with ``.env.example`` copied to ``.env``."""
    document: dict[str, Any] = interpolate(compose, env_example())
    return document


def service_with_image(compose: dict[str, Any], repository: str) -> tuple[str, dict[str, Any]]:
    found = [
        (name, service)
        for name, service in compose["services"].items()
        if str(service.get("image", "")).split(":")[0] == repository
    ]
    assert len(found) == 1, f"expected one service running the official {repository} image"
    return found[0]


def check_against_compose_spec(path: Path) -> None:
    """Validate with the Compose specification's schema vendored in ``check-jsonschema``."""
    command = ["check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)]
    done = subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if "No module named check_jsonschema" in done.stderr:
        pytest.fail("check-jsonschema is a test dependency: pip install -e '.[test]'")
    assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------- docker-compose.yml


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    check_against_compose_spec(COMPOSE)


def test_compose_file_is_still_valid_once_env_example_values_are_filled_in(
    resolved: dict[str, Any], tmp_path: Path
) -> None:
    filled_in = tmp_path / "compose.json"
    filled_in.write_text(json.dumps(resolved))
    check_against_compose_spec(filled_in)


def test_every_variable_the_compose_file_uses_is_defined_in_env_example(
    compose: dict[str, Any],
) -> None:
    assert variables_used(compose) - env_example().keys() == set()


def test_env_example_defines_only_variables_the_compose_file_uses(compose: dict[str, Any]) -> None:
    assert env_example().keys() - variables_used(compose) == set()


def test_compose_file_holds_no_credentials_only_variables(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if _SECRET_KEY.search(key):
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", value), f"{name}.{key} is literal"
    for text in strings(compose):
        userinfo = urlsplit(text).netloc.rpartition("@")[0] if "://" in text else ""
        for part in filter(None, userinfo.split(":")):
            assert re.fullmatch(r"\$\{\w+\}", part), f"literal credentials in {text!r}"


def test_env_file_with_the_real_passwords_is_ignored_by_git() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert done.returncode == 0, "add .env to .gitignore"


@pytest.mark.parametrize("repository", ["mongo", "postgres"])
def test_databases_run_a_current_official_image_with_a_health_check_and_a_named_volume(
    compose: dict[str, Any], repository: str
) -> None:
    _, service = service_with_image(compose, repository)
    major = int(re.match(r"\d+", service["image"].split(":")[1])[0])  # type: ignore[index]
    assert major >= {"mongo": 8, "postgres": 17}[repository]
    assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    sources = [str(volume).split(":")[0] for volume in service["volumes"]]
    assert set(sources) <= set(compose["volumes"]), "data lives in named volumes"


def test_jupyterlab_waits_until_both_databases_are_healthy(compose: dict[str, Any]) -> None:
    mongo, _ = service_with_image(compose, "mongo")
    postgres, _ = service_with_image(compose, "postgres")
    depends_on = compose["services"]["jupyterlab"]["depends_on"]
    assert depends_on == {
        mongo: {"condition": "service_healthy"},
        postgres: {"condition": "service_healthy"},
    }


def test_jupyterlab_image_installs_this_repository_with_the_notebooks(
    compose: dict[str, Any],
) -> None:
    build = compose["services"]["jupyterlab"]["build"]
    assert (ROOT / build["context"]).resolve() == ROOT
    dockerfile = (ROOT / build["context"] / build["dockerfile"]).read_text()
    install = re.search(r'pip install -e "\.\[([\w,]+)\]"', dockerfile)
    assert install is not None, "the image installs the repository in editable mode"
    assert {"notebooks", "test"} <= set(install[1].split(","))
    assert set(install[1].split(",")) <= pyproject()["project"]["optional-dependencies"].keys()
    assert re.search(r"CMD \[\"jupyter\", \"lab\"", dockerfile), "the image opens JupyterLab"


def test_every_published_port_is_on_the_loopback_interface_only(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        for mapping in service.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping}"


def test_jupyterlab_hands_the_notebooks_only_settings_that_migrationkit_reads(
    compose: dict[str, Any],
) -> None:
    prefix = Settings.model_config.get("env_prefix", "")
    readable = {prefix + field.upper() for field in Settings.model_fields}
    connections = {
        prefix + field.upper()
        for field, info in Settings.model_fields.items()
        if SecretStr in get_args(info.annotation)
    }
    given = {
        key for key in compose["services"]["jupyterlab"]["environment"] if key.startswith(prefix)
    }
    assert connections, "Settings has connection-string fields"
    assert given <= readable, f"{sorted(given - readable)} are not migrationkit settings"
    assert connections <= given, "the notebooks get both connection strings"


def test_jupyterlab_connection_strings_point_at_the_compose_databases(
    resolved: dict[str, Any],
) -> None:
    prefix = Settings.model_config.get("env_prefix", "")
    environment = resolved["services"]["jupyterlab"]["environment"]
    mongo_name, mongo = service_with_image(resolved, "mongo")
    pg_name, postgres = service_with_image(resolved, "postgres")

    uri = urlsplit(environment[f"{prefix}MONGO_URI"])
    assert (uri.scheme, uri.hostname, uri.port) == ("mongodb", mongo_name, 27017)
    assert uri.username == mongo["environment"]["MONGO_INITDB_ROOT_USERNAME"]
    assert uri.password == mongo["environment"]["MONGO_INITDB_ROOT_PASSWORD"]

    dsn = urlsplit(environment[f"{prefix}PG_DSN"])
    assert (dsn.scheme, dsn.hostname, dsn.port) == ("postgresql", pg_name, 5432)
    assert dsn.username == postgres["environment"]["POSTGRES_USER"]
    assert dsn.password == postgres["environment"]["POSTGRES_PASSWORD"]
    assert dsn.path == "/" + postgres["environment"]["POSTGRES_DB"]

    Settings(mongo_uri=uri.geturl(), pg_dsn=dsn.geturl())  # and migrationkit accepts them


# --------------------------------------------------------------------------- mongodb replica set


def mongod_option(service: dict[str, Any], option: str) -> str:
    """The value of ``--option VALUE`` on the service's ``mongod`` command line."""
    command = service["command"]
    assert command[0] == "mongod", "the service runs mongod through the image's entrypoint"
    assert command.count(option) == 1, f"mongod {option} is given once"
    value: str = command[command.index(option) + 1]
    return value


def healthcheck_script(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    assert test[:2] == ["CMD", "mongosh"], "mongosh runs the check, no shell in between"
    script: str = test[test.index("--eval") + 1]
    return script


def test_mongodb_runs_as_a_replica_set_so_change_streams_work(compose: dict[str, Any]) -> None:
    _, mongo = service_with_image(compose, "mongo")
    assert mongod_option(mongo, "--replSet") == "rs0"


def test_mongodb_key_file_is_written_by_its_entrypoint_before_mongod_starts(
    compose: dict[str, Any],
) -> None:
    # mongod refuses a replica set with authorization but no key file (BadValue).
    _, mongo = service_with_image(compose, "mongo")
    key_file = mongod_option(mongo, "--keyFile")
    shell, flag, script, *arguments = mongo["entrypoint"]
    assert (shell, flag) == ("bash", "-c")
    lines = script.strip().splitlines()
    assert lines[0].endswith(f"> {key_file}"), "the key file is written first"
    assert f"chmod 400 {key_file}" in lines, "mongod rejects a key file others can read"
    assert f"chown mongodb:mongodb {key_file}" in lines, "mongod runs as the mongodb user"
    assert lines[-1] == 'exec docker-entrypoint.sh "$$@"', "then the image's own entrypoint"
    assert arguments == ["docker-entrypoint.sh"], "$0 for the script; the command follows"


def test_mongodb_health_check_initiates_the_set_once_with_the_service_as_its_member(
    compose: dict[str, Any],
) -> None:
    name, mongo = service_with_image(compose, "mongo")
    script = healthcheck_script(mongo)
    one_member = r"rs\.initiate\(\{_id: '(\w+)', members: \[\{_id: 0, host: '([^']+)'\}\]\}\)"
    initiate = re.search(one_member, script)
    assert initiate is not None, "the health check runs rs.initiate with one member"
    assert initiate[1] == mongod_option(mongo, "--replSet")
    assert initiate[2] == f"{name}:27017", "the member's address is the service's own"
    # Only when the set is not initiated yet (NotYetInitialized): any other failure of
    # rs.status(), such as a wrong password, must not initiate anything.
    rethrow = r"try \{ rs\.status\(\) \} catch \((\w+)\) \{ if \(\1\.code !== 94\) throw \1;"
    guard = re.search(rethrow, script)
    assert guard is not None
    assert guard.end() < initiate.start()


def test_mongodb_is_healthy_only_once_it_is_the_primary(compose: dict[str, Any]) -> None:
    _, mongo = service_with_image(compose, "mongo")
    script = healthcheck_script(mongo)
    assert script.rstrip().endswith("quit(db.hello().isWritablePrimary ? 0 : 1)")


def test_mongodb_health_check_logs_in_with_the_root_user_from_the_environment(
    compose: dict[str, Any],
) -> None:
    _, mongo = service_with_image(compose, "mongo")
    script = healthcheck_script(mongo)
    used = re.findall(r"process\.env\.(\w+)", script)
    assert used == ["MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD"]
    assert set(used) <= set(mongo["environment"]), "read from the container's environment"
    assert script.startswith("db.getSiblingDB('admin').auth("), "authenticated before rs.*"


def test_jupyterlab_connects_to_the_one_member_directly(resolved: dict[str, Any]) -> None:
    # The member's address (mongodb:27017) does not resolve on the host, so clients use
    # directConnection rather than replica-set discovery, from the host and containers alike.
    prefix = Settings.model_config.get("env_prefix", "")
    uri = urlsplit(resolved["services"]["jupyterlab"]["environment"][f"{prefix}MONGO_URI"])
    assert "directConnection=true" in uri.query.split("&")


def test_readme_says_change_streams_need_the_replica_set_compose_provides() -> None:
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"change\s+streams[^.]*replica\s+set[^.]*compose\s+file[^.]*rs0", readme), (
        "README: where docker compose is described, say that change streams need a "
        "replica set and that the compose file runs one (rs0)"
    )


# --------------------------------------------------------------------------- prometheus, grafana


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> path in the clone, for the service's ``./…`` bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            mounts[target] = (ROOT / source).resolve()
    return mounts


def test_every_bind_mounted_file_or_directory_is_in_the_repository(
    compose: dict[str, Any],
) -> None:
    for name, service in compose["services"].items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name} mounts {source} (missing) on {target}"


@pytest.mark.parametrize(
    ("repository", "oldest"), [("prom/prometheus", 3), ("grafana/grafana", 12)]
)
def test_monitoring_runs_a_current_official_image(
    compose: dict[str, Any], repository: str, oldest: int
) -> None:
    _, service = service_with_image(compose, repository)
    major = int(re.match(r"v?(\d+)", service["image"].split(":")[1])[1])  # type: ignore[index]
    assert major >= oldest


def test_prometheus_scrapes_the_port_jupyterlab_serves_metrics_on(
    resolved: dict[str, Any],
) -> None:
    prefix = Settings.model_config.get("env_prefix", "")
    environment = resolved["services"]["jupyterlab"]["environment"]
    settings = Settings(
        metrics_host=environment[f"{prefix}METRICS_HOST"],
        metrics_port=environment[f"{prefix}METRICS_PORT"],
    )
    assert settings.metrics_host == "0.0.0.0", "reachable from the prometheus container"
    _, prometheus = service_with_image(resolved, "prom/prometheus")
    config = load_yaml(bind_mounts(prometheus)["/etc/prometheus/prometheus.yml"])
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    assert targets == [f"jupyterlab:{settings.metrics_port}"]


def test_grafana_is_provisioned_with_the_prometheus_service_and_the_dashboard(
    resolved: dict[str, Any],
) -> None:
    prometheus_name, _ = service_with_image(resolved, "prom/prometheus")
    _, grafana = service_with_image(resolved, "grafana/grafana")
    mounts = bind_mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    (source,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert urlsplit(source["url"]).netloc == f"{prometheus_name}:9090"
    (provider,) = load_yaml(provisioning / "dashboards" / "migrationkit.yml")["providers"]
    dashboards = mounts[provider["options"]["path"]]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / Path(home).relative_to(provider["options"]["path"])).is_file()
    dashboard = json.loads((dashboards / "migrationkit.json").read_text())
    assert {
        target["datasource"]["uid"] for p in dashboard["panels"] for target in p["targets"]
    } == {source["uid"]}


# --------------------------------------------------------------------------- environment.yml


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pyproject_requirements(*groups: str) -> dict[str, Requirement]:
    """Requirements by canonical name: ``project`` means ``[project] dependencies``."""
    project = pyproject()["project"]
    lines = [
        line
        for group in groups
        for line in (
            project["dependencies"]
            if group == "project"
            else project["optional-dependencies"][group]
        )
    ]
    return {canonicalize_name(Requirement(line).name): Requirement(line) for line in lines}


def conda_environment() -> tuple[dict[str, str], list[str]]:
    """The conda packages (canonical name → spec) and the ``pip:`` lines."""
    conda: dict[str, str] = {}
    pip: list[str] = []
    for entry in load_yaml(CONDA_ENV)["dependencies"]:
        if isinstance(entry, dict):
            pip += entry["pip"]
        else:
            name = re.match(r"[A-Za-z0-9_.-]+", entry)[0]  # type: ignore[index]
            conda[canonicalize_name(name)] = entry
    return conda, pip


def test_conda_environment_uses_conda_forge() -> None:
    assert load_yaml(CONDA_ENV)["channels"][0] == "conda-forge"


def test_every_conda_package_is_a_pyproject_dependency_with_the_same_bounds() -> None:
    conda, _ = conda_environment()
    declared = pyproject_requirements("project", *pyproject()["project"]["optional-dependencies"])
    for name, spec in conda.items():
        if name in ("python", "pip"):
            continue
        assert name in declared, f"{spec!r} in environment.yml is not in pyproject.toml"
        assert Requirement(spec).specifier == declared[name].specifier, (
            f"environment.yml has {spec!r}, pyproject.toml has {declared[name]}"
        )


def test_conda_installs_every_core_notebook_and_test_dependency() -> None:
    conda, _ = conda_environment()
    wanted = pyproject_requirements("project", "notebooks", "test")
    missing = sorted(str(wanted[name]) for name in wanted.keys() - conda.keys())
    assert missing == [], f"add to environment.yml: {missing}"


def test_conda_python_is_one_the_package_supports() -> None:
    conda, _ = conda_environment()
    version = conda["python"].split("=", 1)[1]
    assert version in SpecifierSet(pyproject()["project"]["requires-python"])


def test_conda_environment_installs_the_kit_editable_with_its_extras() -> None:
    _, pip = conda_environment()
    (editable,) = pip
    match = re.fullmatch(r'-e "\.\[([\w,]+)\]"', editable)
    assert match is not None, f'expected -e ".[extras]", got {editable!r}'
    extras = set(match[1].split(","))
    assert {"embedded", "notebooks", "test"} <= extras
    assert extras <= pyproject()["project"]["optional-dependencies"].keys()


def test_readme_activates_the_environment_that_environment_yml_creates() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "conda env create -f environment.yml" in readme
    assert f"conda activate {load_yaml(CONDA_ENV)['name']}\n" in readme
    assert "cp .env.example .env" in readme
    assert "docker compose up" in readme
