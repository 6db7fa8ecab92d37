"""The cloud and Kubernetes configs, validated statically (CI can launch neither): the launcher
YAML against the schema inside the ``ray`` package, the KubeRay manifests for the fields KubeRay
requires, and the local cluster script's bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

CLUSTER = Path(__file__).resolve().parent.parent / "cluster"


def test_aws_launcher_config_validates_against_rays_schema_as_given_and_as_ray_up_prepares_it() -> None:
    import jsonschema
    import ray
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    validate_config(prepare_config(config))  # what `ray up` does before launching anything
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["resources"]["GPU"] == 1 and config["available_node_types"]["head"]["resources"]["CPU"] == 0
    assert any("pip install" in c and "stiltsearch" in c for c in config["setup_commands"])


def test_the_launcher_schema_rejects_what_it_should() -> None:
    """The validation above is not vacuous: a misspelt key fails it."""
    import jsonschema
    import ray

    config = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    config["max_worker"] = config.pop("max_workers")
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError, match="max_worker"):
        jsonschema.validate(config, schema)


def test_every_key_of_the_launcher_config_is_commented() -> None:
    lines = (CLUSTER / "aws.yaml").read_text().splitlines()
    top = [i for i, line in enumerate(lines) if line and not line.startswith(("#", " ", "-"))]
    assert all(lines[i - 1].startswith("#") or i == 0 for i in top), [lines[i] for i in top if not lines[i - 1].startswith("#")]


def _pod_spec_ok(template: dict[str, Any]) -> None:
    containers = template["spec"]["containers"]
    assert containers and all(c["name"] and c["image"] for c in containers)


def _start_params_ok(params: dict[str, Any]) -> None:
    assert all(isinstance(v, str) for v in params.values()), params  # KubeRay: map[string]string


def test_kuberay_raycluster_has_the_fields_kuberay_requires() -> None:
    docs = list(yaml.safe_load_all((CLUSTER / "kuberay" / "raycluster.yaml").read_text()))
    (cluster,) = [d for d in docs if d and d["kind"] == "RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["metadata"]["name"]
    spec = cluster["spec"]
    _start_params_ok(spec["headGroupSpec"]["rayStartParams"])
    _pod_spec_ok(spec["headGroupSpec"]["template"])
    assert spec["rayVersion"] == "2.60.0"
    for group in spec["workerGroupSpecs"]:
        assert group["groupName"]
        _start_params_ok(group["rayStartParams"])
        _pod_spec_ok(group["template"])
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        json.loads(json.loads(group["rayStartParams"]["resources"]))  # KubeRay passes it through `ray start`
    claims = {d["metadata"]["name"] for d in docs if d and d["kind"] == "PersistentVolumeClaim"}
    for template in [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]:
        used = {v["persistentVolumeClaim"]["claimName"] for v in template["spec"]["volumes"]}
        assert used <= claims


def test_kuberay_rayjob_runs_stiltsearch_on_that_cluster() -> None:
    job = yaml.safe_load((CLUSTER / "kuberay" / "rayjob.yaml").read_text())
    cluster = next(d for d in yaml.safe_load_all((CLUSTER / "kuberay" / "raycluster.yaml").read_text())
                   if d and d["kind"] == "RayCluster")
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob" and job["metadata"]["name"]
    spec = job["spec"]
    assert spec["entrypoint"].startswith("stiltsearch run ")
    assert ("rayClusterSpec" in spec) != ("clusterSelector" in spec)  # exactly one way to get a cluster
    assert spec["clusterSelector"]["ray.io/cluster"] == cluster["metadata"]["name"]
    yaml.safe_load(spec["runtimeEnvYAML"])


def test_local_cluster_script_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    env = {**os.environ}
    cli = [sys.executable, "-m", "stiltsearch.cluster.local"]
    stop = subprocess.run([*cli, "stop", str(tmp_path)], capture_output=True, text=True, env=env, timeout=60)
    assert stop.returncode == 2 and "holds no cluster.json" in stop.stderr
    bad = subprocess.run([*cli, "start", str(tmp_path), "--workers", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--workers: give a number in 1..64, got 0" in bad.stderr


def test_the_shipped_configs_name_resources_the_shipped_clusters_declare_and_no_trial_takes_the_meters_gpu() -> None:
    """One name on both sides: a config's meter resource (throughput.resource) and trial resource
    (search.trial_resource) are declared by the AWS launcher file and the KubeRay cluster alike, the
    meter's node offers a GPU, and no node that offers the trial resource offers the meter's."""
    from stiltsearch.search.config.reading import load_config

    aws = yaml.safe_load((CLUSTER / "aws.yaml").read_text())
    aws_nodes = [t["resources"] for t in aws["available_node_types"].values()]
    cluster = next(d for d in yaml.safe_load_all((CLUSTER / "kuberay" / "raycluster.yaml").read_text())
                   if d and d["kind"] == "RayCluster")
    kuberay_nodes = [{**json.loads(json.loads(g["rayStartParams"]["resources"])),
                      "GPU": int(g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu", 0))}
                     for g in cluster["spec"]["workerGroupSpecs"]]
    routed = [load_config(p) for p in sorted((CLUSTER.parent / "configs").glob("*.yaml"))]
    routed = [c for c in routed if c.throughput.resource]
    assert routed, "a shipped config routes its measurements to a meter node"
    for cfg in routed:
        meter, trial = cfg.throughput.resource, cfg.search.trial_resource
        for nodes in (aws_nodes, kuberay_nodes):
            meters = [n for n in nodes if n.get(meter)]
            assert meters and all(n.get("GPU", 0) >= 1 for n in meters), (cfg.name, meter)
            assert any(n.get(trial) for n in nodes), (cfg.name, trial)
            assert not any(n.get(trial) and n.get(meter) for n in nodes), cfg.name
