#!/usr/bin/env python3
"""check-manifests.py: offline consistency checks of deploy/k8s that no schema can make.

Reads the objects kubectl parsed (a YAML stream or a v1 List on stdin or in argv[1]) and checks that
the pieces fit together: one namespace throughout, the StatefulSet's service is the headless peer
Service, the ConfigMap's replicas are exactly the StatefulSet's pods by their DNS names (ids from the
ordinals), CHOIR_PEERS names the same hosts, probes, PDB, volumes and security settings are there.
Prints one line per problem and exits 1 when there is any; prints what it checked otherwise.
"""
import sys

import yaml


def objects(stream):
    for doc in yaml.safe_load_all(stream):
        if not doc:
            continue
        if doc.get("kind") == "List":
            yield from doc.get("items", [])
        else:
            yield doc


def main():
    src = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    objs = list(objects(src))
    problems = []

    def need(cond, what):
        if not cond:
            problems.append(what)
        return cond

    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    for kind in ("Namespace", "ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget", "Secret"):
        need(kind in by_kind, f"no {kind}")
    if problems:
        return report(problems)
    ns = by_kind["Namespace"][0]["metadata"]["name"]
    for o in objs:
        if o["kind"] != "Namespace":
            need(o["metadata"].get("namespace") == ns, f"{o['kind']}/{o['metadata']['name']} is not in namespace {ns}")

    sts = by_kind["StatefulSet"][0]
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    name, n = sts["metadata"]["name"], spec["replicas"]
    labels = spec["template"]["metadata"]["labels"]
    need(spec.get("podManagementPolicy") == "Parallel", "StatefulSet podManagementPolicy is not Parallel")
    need(n % 2 == 1, f"StatefulSet replicas {n} is even")
    need(all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()), "selector misses the pod labels")
    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    peers = services.get(spec["serviceName"])
    if need(peers is not None, f"no Service {spec['serviceName']} (the StatefulSet's serviceName)"):
        need(peers["spec"].get("clusterIP") == "None", "the peer Service is not headless")
        need(peers["spec"].get("publishNotReadyAddresses") is True, "the peer Service does not publish not-ready pods")
    clients = [s for s in services.values() if s["spec"].get("clusterIP") != "None"]
    need(len(clients) == 1, "not exactly one client Service")
    for s in services.values():
        need(all(labels.get(k) == v for k, v in s["spec"]["selector"].items()), f"Service {s['metadata']['name']} selects no replica")

    # the configuration: replicas by DNS name, ids from ordinals
    cms = {c["metadata"]["name"]: c for c in by_kind["ConfigMap"]}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    cm_name = vols.get("config", {}).get("configMap", {}).get("name")
    cm = cms.get(cm_name)
    if need(cm is not None, f"the config volume names ConfigMap {cm_name}, which is not here"):
        cfg = yaml.safe_load(cm["data"]["choir.yaml"])
        host = f"{{}}.{spec['serviceName']}.{ns}.svc.cluster.local"
        want = [f"{i + 1}={host.format(f'{name}-{i}')}:7301/{host.format(f'{name}-{i}')}:7401" for i in range(n)]
        need(cfg.get("replicas") == want, f"choir.yaml replicas {cfg.get('replicas')} are not the pods {want}")
        need("replica_id" not in cfg, "choir.yaml sets replica_id (the entrypoint gives it from the ordinal)")
        need(cfg.get("peer_transport") == "unicast", "choir.yaml has no peer_transport: unicast")
        need(bool(cfg.get("cluster_key_file")), "choir.yaml has no cluster_key_file")
        need(cfg.get("data_dir") == "/var/lib/choir", "data_dir is not the data volume's /var/lib/choir")
        need("entrypoint.sh" in cm["data"], "the ConfigMap has no entrypoint.sh")

    c = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    hosts = [f"{name}-{i}.{spec['serviceName']}.{ns}.svc.cluster.local" for i in range(n)]
    need((env.get("CHOIR_PEERS") or "").split() == hosts, f"CHOIR_PEERS is not {hosts}")
    if cm is not None:
        need(env.get("CHOIR_KEY_FILE") == cfg.get("cluster_key_file"), "CHOIR_KEY_FILE is not cluster_key_file")
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    need(env.get("CHOIR_KEY_SOURCE", "").startswith(mounts.get("cluster-key", "?") + "/"), "CHOIR_KEY_SOURCE is not in the key volume")
    need(mounts.get("data") == "/var/lib/choir", "the data volume is not mounted at /var/lib/choir")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        need(probe in c, f"no {probe}")
    need("requests" in c.get("resources", {}), "no resource requests")
    need(pod.get("securityContext", {}).get("runAsNonRoot") is True, "the pod does not run as non-root")
    need("terminationGracePeriodSeconds" in pod, "no terminationGracePeriodSeconds")
    need("preferredDuringSchedulingIgnoredDuringExecution" in pod.get("affinity", {}).get("podAntiAffinity", {}),
         "no preferred pod anti-affinity")
    need([t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])] == ["data"], "no volumeClaimTemplate data")
    secret = vols.get("cluster-key", {}).get("secret", {}).get("secretName")
    need(secret in [s["metadata"]["name"] for s in by_kind["Secret"]], f"the key volume names Secret {secret}, not the example's")

    pdb = by_kind["PodDisruptionBudget"][0]["spec"]
    need(pdb.get("maxUnavailable") == 1, "the PodDisruptionBudget does not allow exactly one down")
    need(all(labels.get(k) == v for k, v in pdb["selector"]["matchLabels"].items()), "the PDB selects no replica")
    if problems:
        return report(problems)
    print(f"check-manifests: ok: {len(objs)} objects in namespace {ns}; {name} x{n} (Parallel) behind headless "
          f"{spec['serviceName']}; replicas by DNS name match the pods; probes, PDB, volumes, security set")
    return 0


def report(problems):
    for p in problems:
        print(f"check-manifests: {p}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
