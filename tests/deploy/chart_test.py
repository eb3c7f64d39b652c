#!/usr/bin/env python3
"""Checks a rendered Weft chart the way a cluster admin's API server would, offline.

usage: chart_test.py RENDERED.yaml [WEFTNODE_SAMPLE.json]

- every object: an API version and kind that exist (Kubernetes 1.26+), a name, a
  namespace when namespaced, and only fields the API knows (the subset Weft uses is
  listed below: a field outside it is a typo the API server would reject);
- the agent DaemonSet: hostNetwork, tolerates everything, only NET_ADMIN and NET_RAW,
  probes, the CNI install init container, the projected token for the controller;
- the controller Deployment: non-root, read-only root, no capabilities, probes, 2
  replicas, a PodDisruptionBudget and a Service that select it;
- the relay Deployment (when enabled): hostNetwork, non-root, no capabilities, its
  relayed address from its Node, the TURN Secret the controller creates mounted; a
  Service with the same port over UDP and TCP; a PodDisruptionBudget; the controller
  told where to find them (--relay-service, --relay-secret);
- RBAC: exact verbs per component, no wildcards, nothing for the agents;
- the CRD: a structural schema, the printer columns, and it accepts (prunes nothing of)
  the status the controller writes.
"""
import json
import sys

import yaml

FAILURES = []


def fail(msg):
    FAILURES.append(msg)


# Kinds that exist, and whether they are namespaced.
KINDS = {
    ("v1", "ServiceAccount"): True,
    ("v1", "Service"): True,
    ("v1", "ConfigMap"): True,
    ("v1", "Secret"): True,
    ("apps/v1", "Deployment"): True,
    ("apps/v1", "DaemonSet"): True,
    ("policy/v1", "PodDisruptionBudget"): True,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): False,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): False,
    ("rbac.authorization.k8s.io/v1", "Role"): True,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): True,
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): False,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): True,
}

# Field schemas (the subset of the Kubernetes API Weft's chart uses). A dict maps field
# names to schemas; a list [schema] is a list of it; "any" is free-form (labels, ...);
# "str", "int", "bool" are scalars.
ANY, STR, INT, BOOL = "any", "str", "int", "bool"
META = {"name": STR, "namespace": STR, "labels": ANY, "annotations": ANY}
SELECTOR = {"matchLabels": ANY, "matchExpressions": ANY}
PROBE = {"httpGet": {"path": STR, "port": ANY, "scheme": STR}, "exec": {"command": [STR]}, "initialDelaySeconds": INT, "periodSeconds": INT,
         "timeoutSeconds": INT, "failureThreshold": INT, "successThreshold": INT}
SECCOMP = {"type": STR, "localhostProfile": STR}
CONTAINER_SC = {"allowPrivilegeEscalation": BOOL, "readOnlyRootFilesystem": BOOL, "runAsUser": INT, "runAsGroup": INT,
                "runAsNonRoot": BOOL, "privileged": BOOL, "capabilities": {"add": [STR], "drop": [STR]},
                "seccompProfile": SECCOMP}
FIELD_REF = {"fieldRef": {"fieldPath": STR, "apiVersion": STR}}
CONTAINER = {"name": STR, "image": STR, "imagePullPolicy": STR, "command": [STR], "args": [STR],
             "env": [{"name": STR, "value": STR, "valueFrom": FIELD_REF}],
             "ports": [{"name": STR, "containerPort": INT, "protocol": STR, "hostPort": INT}],
             "readinessProbe": PROBE, "livenessProbe": PROBE, "startupProbe": PROBE,
             "securityContext": CONTAINER_SC, "resources": {"requests": ANY, "limits": ANY},
             "volumeMounts": [{"name": STR, "mountPath": STR, "readOnly": BOOL, "subPath": STR}]}
VOLUME = {"name": STR, "hostPath": {"path": STR, "type": STR}, "configMap": {"name": STR, "optional": BOOL, "items": ANY},
          "secret": {"secretName": STR, "optional": BOOL, "items": ANY}, "emptyDir": ANY,
          "projected": {"sources": [{"serviceAccountToken": {"audience": STR, "expirationSeconds": INT, "path": STR},
                                     "configMap": ANY, "secret": ANY}], "defaultMode": INT}}
TOLERATION = {"key": STR, "operator": STR, "value": STR, "effect": STR, "tolerationSeconds": INT}
POD_SPEC = {"serviceAccountName": STR, "automountServiceAccountToken": BOOL, "hostNetwork": BOOL, "dnsPolicy": STR,
            "priorityClassName": STR, "terminationGracePeriodSeconds": INT, "imagePullSecrets": [{"name": STR}],
            "tolerations": [TOLERATION], "nodeSelector": ANY,
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                                             [{"topologyKey": STR, "labelSelector": SELECTOR}],
                                             "preferredDuringSchedulingIgnoredDuringExecution": ANY}},
            "securityContext": {"runAsNonRoot": BOOL, "runAsUser": INT, "runAsGroup": INT, "fsGroup": INT,
                                "seccompProfile": SECCOMP},
            "initContainers": [CONTAINER], "containers": [CONTAINER], "volumes": [VOLUME]}
TEMPLATE = {"metadata": META, "spec": POD_SPEC}
RULE = {"apiGroups": [STR], "resources": [STR], "resourceNames": [STR], "verbs": [STR]}
SPECS = {
    "ServiceAccount": {"automountServiceAccountToken": BOOL},
    "Service": {"spec": {"type": STR, "clusterIP": STR, "selector": ANY, "externalTrafficPolicy": STR,
                         "ports": [{"name": STR, "port": INT, "targetPort": ANY, "protocol": STR, "appProtocol": STR}]}},
    "Deployment": {"spec": {"replicas": INT, "selector": SELECTOR, "template": TEMPLATE,
                            "strategy": {"type": STR, "rollingUpdate": {"maxSurge": ANY, "maxUnavailable": ANY}}}},
    "DaemonSet": {"spec": {"selector": SELECTOR, "template": TEMPLATE,
                           "updateStrategy": {"type": STR, "rollingUpdate": {"maxUnavailable": ANY, "maxSurge": ANY}}}},
    "PodDisruptionBudget": {"spec": {"minAvailable": ANY, "maxUnavailable": ANY, "selector": SELECTOR}},
    "ClusterRole": {"rules": [RULE]},
    "Role": {"rules": [RULE]},
    "ClusterRoleBinding": {"roleRef": {"apiGroup": STR, "kind": STR, "name": STR},
                           "subjects": [{"kind": STR, "name": STR, "namespace": STR}]},
    "RoleBinding": {"roleRef": {"apiGroup": STR, "kind": STR, "name": STR},
                    "subjects": [{"kind": STR, "name": STR, "namespace": STR}]},
    "CustomResourceDefinition": {"spec": ANY},  # checked below, structurally
    "ServiceMonitor": {"spec": ANY},
    "ConfigMap": {"data": ANY},
    "Secret": {"data": ANY, "type": STR},
}


def check_fields(value, schema, path):
    if schema == ANY:
        return
    if schema == STR:
        if not isinstance(value, str):
            fail(f"{path}: want a string, got {value!r}")
    elif schema == INT:
        if not isinstance(value, int) or isinstance(value, bool):
            fail(f"{path}: want an integer, got {value!r}")
    elif schema == BOOL:
        if not isinstance(value, bool):
            fail(f"{path}: want a boolean, got {value!r}")
    elif isinstance(schema, list):
        if not isinstance(value, list):
            fail(f"{path}: want a list")
            return
        for i, v in enumerate(value):
            check_fields(v, schema[0], f"{path}[{i}]")
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            fail(f"{path}: want an object")
            return
        for k, v in value.items():
            if k not in schema:
                fail(f"{path}.{k}: no such field")
            else:
                check_fields(v, schema[k], f"{path}.{k}")


def check_object(o):
    key = (o.get("apiVersion"), o.get("kind"))
    where = f"{o.get('kind')}/{o.get('metadata', {}).get('name')}"
    if key not in KINDS:
        fail(f"{where}: {key[0]} {key[1]} is not an API the chart may use")
        return
    meta = o.get("metadata") or {}
    if not meta.get("name"):
        fail(f"{where}: no metadata.name")
    if KINDS[key] and not meta.get("namespace"):
        fail(f"{where}: namespaced, but no metadata.namespace")
    if not KINDS[key] and "namespace" in meta:
        fail(f"{where}: cluster-scoped, but has a namespace")
    schema = dict(SPECS[key[1]], apiVersion=STR, kind=STR, metadata=META)
    check_fields(o, schema, where)


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def one(objs, kind, name):
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    if len(found) != 1:
        fail(f"want one {kind}/{name}, found {len(found)}")
        return None
    return found[0]


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_workload(o, pod_labels_sel):
    spec = o["spec"]
    tmpl_labels = spec["template"]["metadata"]["labels"]
    if not selects(spec["selector"]["matchLabels"], tmpl_labels):
        fail(f"{o['kind']}/{o['metadata']['name']}: selector does not match its pod labels")
    for c in spec["template"]["spec"]["containers"]:
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in c:
                fail(f"{o['kind']} container {c['name']}: no {probe}")
        port_names = {p["name"] for p in c.get("ports", [])}
        for probe in ("readinessProbe", "livenessProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            if isinstance(port, str) and port not in port_names:
                fail(f"{o['kind']} container {c['name']}: {probe} names port {port}, which it does not declare")
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            fail(f"{o['kind']} container {c['name']}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(f"{o['kind']} container {c['name']}: allowPrivilegeEscalation must be false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(f"{o['kind']} container {c['name']}: must drop ALL capabilities")
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(f"{o['kind']} container {c['name']}: root filesystem must be read-only")
    mounts = {m["name"] for c in spec["template"]["spec"]["containers"] + spec["template"]["spec"].get("initContainers", [])
              for m in c.get("volumeMounts", [])}
    volumes = {v["name"] for v in spec["template"]["spec"].get("volumes", [])}
    if mounts - volumes:
        fail(f"{o['kind']}/{o['metadata']['name']}: mounts {sorted(mounts - volumes)} without volumes")


def check_agent(objs):
    ds = one(objs, "DaemonSet", "weft-agent")
    if ds and ds["spec"]["template"]["spec"].get("securityContext", {}).get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail("agent: the pod must run with seccomp RuntimeDefault")
    if ds:
        agent_c = [c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "agent"]
        cleanup = any(a.startswith("--cni-bin-file=") for c in agent_c for a in c.get("args", []))
        has_bin = any(m["name"] == "cni-bin" for c in agent_c for m in c.get("volumeMounts", []))
        if has_bin != cleanup:
            fail("agent: the host's CNI plugin directory is mounted in the agent only to remove the plugin on uninstall")
    if ds is None:
        return
    check_workload(ds, None)
    pod = ds["spec"]["template"]["spec"]
    if pod.get("hostNetwork") is not True:
        fail("agent: must be hostNetwork")
    if {"operator": "Exists"} not in pod.get("tolerations", []):
        fail("agent: must tolerate every taint")
    if pod.get("automountServiceAccountToken") is not True:
        fail("agent: mounts its API token (read-only access to its DaemonSet, for uninstall)")
    agent = pod["containers"][0]
    caps = agent["securityContext"]["capabilities"].get("add", [])
    if sorted(caps) != ["NET_ADMIN", "NET_RAW"]:
        fail(f"agent: capabilities {caps}, want only NET_ADMIN and NET_RAW")
    init = pod.get("initContainers", [])
    if not init or "weft-cni" not in " ".join(init[0]["command"]):
        fail("agent: an init container must install weft-cni")
    if init and init[0]["securityContext"]["capabilities"].get("add"):
        fail("agent: the CNI install container needs no capability")
    tokens = [s["serviceAccountToken"] for v in pod["volumes"] if "projected" in v
              for s in v["projected"]["sources"] if "serviceAccountToken" in s]
    if not tokens or tokens[0].get("audience") != "weft-controller":
        fail("agent: needs a projected token for the weft-controller audience")
    # The relay forwarder sidecar: exactly when the agent is told to use one, at the
    # socket the agent looks for (its state directory), with no capability.
    forwarders = [c for c in pod["containers"] if c["name"] == "relay-forwarder"]
    if bool(forwarders) != ("--relay-forwarder-sidecar" in agent["args"]):
        fail("agent: --relay-forwarder-sidecar exactly when the relay-forwarder sidecar runs")
    for f in forwarders:
        if f["securityContext"]["capabilities"].get("add"):
            fail("agent: the relay forwarder needs no capability")
        state = [m["mountPath"] for m in agent["volumeMounts"] if m["name"] == "state"]
        if not state or f"--socket={state[0]}/relay-forwarder.sock" not in f["args"]:
            fail("agent: the relay forwarder's socket is not in the agent's state directory")
        if not any(m["name"] == "state" and m["mountPath"] == state[0] for m in f.get("volumeMounts", [])):
            fail("agent: the relay forwarder does not mount the agent's state directory there")
    args = " ".join(agent["args"])
    for flag in ("--token-file=", "--ca-file=", "--stun=", "--wg-port=", "--pod-mtu=", "--node=$(NODE_NAME)"):
        if flag not in args:
            fail(f"agent: no {flag} argument")


def check_controller(objs):
    d = one(objs, "Deployment", "weft-controller")
    if d is None:
        return
    check_workload(d, None)
    pod = d["spec"]["template"]["spec"]
    if d["spec"]["replicas"] < 2:
        fail("controller: fewer than 2 replicas")
    if pod["securityContext"].get("runAsNonRoot") is not True:
        fail("controller: must run as non-root")
    c = pod["containers"][0]
    if c["securityContext"]["capabilities"].get("add"):
        fail("controller: must add no capability")
    if "--kubernetes" not in c["args"]:
        fail("controller: not in kubernetes mode")
    labels = d["spec"]["template"]["metadata"]["labels"]
    pdb = one(objs, "PodDisruptionBudget", "weft-controller")
    if pdb and not selects(pdb["spec"]["selector"]["matchLabels"], labels):
        fail("controller: the PodDisruptionBudget does not select it")
    svc = one(objs, "Service", "weft-controller")
    if svc:
        if not selects(svc["spec"]["selector"], labels):
            fail("controller: the Service does not select it")
        names = {p["name"] for p in c["ports"]}
        for p in svc["spec"]["ports"]:
            if isinstance(p["targetPort"], str) and p["targetPort"] not in names:
                fail(f"controller Service: targetPort {p['targetPort']} is not a container port")


def check_relay(objs):
    d = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "weft-relay"]
    controller = one(objs, "Deployment", "weft-controller")
    cargs = controller["spec"]["template"]["spec"]["containers"][0]["args"] if controller else []
    if not d:
        if any(a.startswith("--relay") for a in cargs):
            fail("relay disabled, yet the controller is told about relays")
        return
    d = d[0]
    check_workload(d, None)
    pod = d["spec"]["template"]["spec"]
    c = pod["containers"][0]
    if pod.get("hostNetwork") is not True:
        fail("relay: must be hostNetwork (relayed ports are the node's)")
    if pod["securityContext"].get("runAsNonRoot") is not True:
        fail("relay: must run as non-root")
    if c["securityContext"]["capabilities"].get("add"):
        fail("relay: must add no capability")
    args = c["args"]
    if "--relay-ip-from-node=$(NODE_NAME)" not in args:
        fail("relay: its relayed address must come from its Node")
    if not any(e["name"] == "NODE_NAME" and e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName"
               for e in c.get("env", [])):
        fail("relay: NODE_NAME must be the pod's spec.nodeName")
    secret_vols = [v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v]
    want_secret = [a.split("=", 1)[1] for a in cargs if a.startswith("--relay-secret=")]
    if not want_secret or secret_vols != want_secret:
        fail(f"relay: mounts Secret {secret_vols}, the controller uses {want_secret}")
    svc = one(objs, "Service", "weft-relay")
    labels = d["spec"]["template"]["metadata"]["labels"]
    if svc:
        if not selects(svc["spec"]["selector"], labels):
            fail("relay: the Service does not select it")
        protos = sorted((p["protocol"], p["port"]) for p in svc["spec"]["ports"])
        if [p for p, _ in protos] != ["TCP", "UDP"] or protos[0][1] != protos[1][1]:
            fail(f"relay Service: want one port over TCP and UDP, got {protos}")
        names = {p["name"] for p in c["ports"]}
        for p in svc["spec"]["ports"]:
            if p["targetPort"] not in names:
                fail(f"relay Service: targetPort {p['targetPort']} is not a container port")
        if f"--relay-service={svc['metadata']['namespace']}/weft-relay" not in cargs:
            fail("controller: not told the relay Service (--relay-service)")
    pdb = one(objs, "PodDisruptionBudget", "weft-relay")
    if pdb and not selects(pdb["spec"]["selector"]["matchLabels"], labels):
        fail("relay: the PodDisruptionBudget does not select it")
    cr = one(objs, "ClusterRole", "weft-relay")
    if cr and cr["rules"] != [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]:
        fail(f"relay ClusterRole: {cr['rules']}, want get nodes only")
    if f"--peer-relays-service={d['metadata']['namespace']}/weft-relay" not in args:
        fail("relay: not told the other relays (--peer-relays-service): cross-relay pairs would get 403")
    rrole = one(objs, "Role", "weft-relay")
    if rrole and rrole["rules"] != [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                                     "verbs": ["list", "watch"]}]:
        fail(f"relay Role: {rrole['rules']}, want list/watch endpointslices only")
    role = one(objs, "Role", "weft-controller")
    if role:
        got = {}
        for rule in role["rules"]:
            for g in rule["apiGroups"]:
                for res in rule["resources"]:
                    key = (g, res, tuple(rule.get("resourceNames", [])))
                    got.setdefault(key, set()).update(rule["verbs"])
        if got.get(("", "pods", ())) != {"get"}:
            fail("controller Role: needs get on pods (an agent's token is bound to its Pod)")
        if got.get(("discovery.k8s.io", "endpointslices", ())) != {"list", "watch"}:
            fail("controller Role: needs list/watch on endpointslices")
        if got.get(("", "secrets", tuple(want_secret))) != {"get"}:
            fail(f"controller Role: needs get on Secret {want_secret}")
        if "create" not in got.get(("", "secrets", ()), set()):
            fail("controller Role: needs create on secrets (the relay Secret, once)")


# Exactly what weft-controller calls (least privilege): a reflector on nodes, list and
# create of WeftNodes, merge patches of their status.
CONTROLLER_CLUSTER_RULES = {
    ("", "nodes"): {"list", "watch"},
    ("weft.dev", "weftnodes"): {"list", "create"},
    ("weft.dev", "weftnodes/status"): {"patch"},
    ("authentication.k8s.io", "tokenreviews"): {"create"},
}


def check_rbac(objs):
    for kind in ("ClusterRole", "Role"):
        for r in by_kind(objs, kind):
            for rule in r.get("rules", []):
                if "*" in rule.get("verbs", []) or "*" in rule.get("resources", []) or "*" in rule.get("apiGroups", []):
                    fail(f"{kind}/{r['metadata']['name']}: wildcard rule {rule}")
    cr = one(objs, "ClusterRole", "weft-controller")
    if cr:
        got = {}
        for rule in cr["rules"]:
            for g in rule["apiGroups"]:
                for res in rule["resources"]:
                    got.setdefault((g, res), set()).update(rule["verbs"])
        if got != CONTROLLER_CLUSTER_RULES:
            fail(f"controller ClusterRole: {got}, want {CONTROLLER_CLUSTER_RULES}")
    # The agents: read-only, and only their own DaemonSet.
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for b in by_kind(objs, kind):
            if not any(s["name"] == "weft-agent" for s in b["subjects"]):
                continue
            role = one(objs, b["roleRef"]["kind"], b["roleRef"]["name"])
            if kind == "ClusterRoleBinding":
                fail(f"{kind}/{b['metadata']['name']}: the agents get no cluster-wide permission")
            for rule in (role or {}).get("rules", []):
                if set(rule["verbs"]) - {"get", "list", "watch"}:
                    fail(f"agent role: verbs {rule['verbs']} are not read-only")
                if rule.get("resources") != ["daemonsets"] or rule.get("resourceNames") != ["weft-agent"]:
                    fail(f"agent role: {rule} reads more than its own DaemonSet")


def check_structural(schema, path):
    """A structural schema (apiextensions.k8s.io/v1): every node has a type, unless it
    preserves unknown fields; no properties next to additionalProperties."""
    if not isinstance(schema, dict):
        fail(f"{path}: not a schema")
        return
    if "type" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields") \
            and not schema.get("x-kubernetes-int-or-string"):
        fail(f"{path}: no type (not structural)")
    if "properties" in schema and "additionalProperties" in schema:
        fail(f"{path}: properties and additionalProperties together")
    for k, v in schema.get("properties", {}).items():
        check_structural(v, f"{path}.{k}")
    if "items" in schema:
        check_structural(schema["items"], f"{path}[]")


def validate(value, schema, path):
    """What the API server does to a status it stores: refuses wrong types, prunes
    unknown fields (reported here as failures: the controller's data would be lost)."""
    t = schema.get("type")
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            fail(f"{path}: {value!r} is not an integer")
    elif t in kinds and not isinstance(value, kinds[t]):
        fail(f"{path}: {value!r} is not a {t}")
    if t == "object" and isinstance(value, dict):
        props = schema.get("properties", {})
        for r in schema.get("required", []):
            if r not in value:
                fail(f"{path}: required {r} missing")
        for k, v in value.items():
            if path == "WeftNode" and k == "metadata":
                continue  # ObjectMeta: validated by the API server, never pruned
            if k in props:
                validate(v, props[k], f"{path}.{k}")
            elif "additionalProperties" not in schema:
                fail(f"{path}.{k}: not in the CRD schema (would be pruned)")
    if t == "array" and isinstance(value, list):
        for i, v in enumerate(value):
            validate(v, schema["items"], f"{path}[{i}]")


def check_crd(objs, sample):
    crd = one(objs, "CustomResourceDefinition", "weftnodes.weft.dev")
    if crd is None:
        return
    spec = crd["spec"]
    if spec["scope"] != "Cluster" or spec["group"] != "weft.dev" or spec["names"]["plural"] != "weftnodes":
        fail("CRD: want cluster-scoped weftnodes.weft.dev")
    v = spec["versions"][0]
    if v.get("subresources", {}).get("status") != {}:
        fail("CRD: needs the status subresource")
    cols = [c["name"] for c in v.get("additionalPrinterColumns", [])]
    if cols != ["NAT", "ENDPOINT", "DIRECT", "RELAYED", "READY", "AGE"]:
        fail(f"CRD printer columns {cols}")
    schema = v["schema"]["openAPIV3Schema"]
    check_structural(schema, "openAPIV3Schema")
    for c in v.get("additionalPrinterColumns", []):
        node = schema
        for part in c["jsonPath"].strip(".").split("."):
            if part == "metadata":
                node = None
                break
            node = node.get("properties", {}).get(part)
            if node is None:
                fail(f"CRD column {c['name']}: {c['jsonPath']} is not in the schema")
                break
    if sample is not None:
        validate(sample, schema, "WeftNode")


def main():
    objs = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o]
    for o in objs:
        check_object(o)
    check_agent(objs)
    check_controller(objs)
    check_relay(objs)
    check_rbac(objs)
    sample = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else None
    check_crd(objs, sample)
    for f in FAILURES:
        print("FAIL:", f)
    print(f"{sys.argv[1]}: {len(objs)} objects, {len(FAILURES)} problems")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
