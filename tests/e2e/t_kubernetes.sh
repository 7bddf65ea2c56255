#!/usr/bin/env bash
# t_kubernetes: etc/kubernetes/roundhouse.yaml holds what its README says and fits together: a
# ConfigMap, a Deployment and two Services; the probes ask /healthz on the admin port that the INI
# listens on; the Prometheus annotations point at it; the Services' selectors and ports meet the
# Deployment's; the INI's backend is the headless Service; shutdown ends inside the grace period.
# Then the ConfigMap's roundhouse.ini passes `roundhouse -t` (its cluster DNS name does not resolve
# here: with resolve set that is a warning, exit 0). No cluster needed, no process started.
set -euo pipefail
PORT_BASE=23400
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
: "${ORIGIN_BIN:=unused}" # lib.sh wants it; this scenario starts no origin
source "$E2E_DIR/lib.sh"

root=$(cd "$E2E_DIR/../.." && pwd)
manifest=$root/etc/kubernetes/roundhouse.yaml
[[ -f $manifest ]] || fail "no $manifest"
python3 -c 'import yaml' 2>/dev/null || fail "python3-yaml is not installed (scripts/setup installs it)"

# ---- the manifest: every check in one pass; the INI goes to a file for -t
ini=$E2E_TMP/roundhouse.ini
cat >"$E2E_TMP/check.py" <<'PY'
import configparser, re, sys, yaml

manifest, ini_out = sys.argv[1], sys.argv[2]
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

with open(manifest) as f:
    docs = [d for d in yaml.safe_load_all(f) if d is not None]
kinds = sorted(d.get("kind", "?") for d in docs)
if kinds != ["ConfigMap", "Deployment", "Service", "Service"]:
    sys.exit(f"kinds: expected ConfigMap, Deployment and 2 Services, got {kinds}")
cm = next(d for d in docs if d["kind"] == "ConfigMap")
dep = next(d for d in docs if d["kind"] == "Deployment")
svcs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
check(cm["metadata"]["name"] == "roundhouse-config", f"ConfigMap name {cm['metadata']['name']!r}")
check(dep["metadata"]["name"] == "roundhouse", f"Deployment name {dep['metadata']['name']!r}")
check(set(svcs) == {"roundhouse", "app-headless"}, f"Service names {sorted(svcs)}")
if errors:
    sys.exit("; ".join(errors))

# the INI, read as roundhouse reads it (';'/'#' comments, ';' after whitespace starts one)
text = cm["data"].get("roundhouse.ini")
if text is None:
    sys.exit("the ConfigMap has no key roundhouse.ini")
with open(ini_out, "w") as f:
    f.write(text)
for n, line in enumerate(text.splitlines(), 1):
    check(len(line) <= 199, f"roundhouse.ini:{n}: longer than 199 characters")
    check(not line[:1].isspace() or not line.strip(), f"roundhouse.ini:{n}: indented (a continuation line)")
ini = configparser.ConfigParser(comment_prefixes=(";", "#"), inline_comment_prefixes=(";",),
                                strict=False, interpolation=None)
ini.read_string(text)
def port_of(addr):
    return int(addr.rsplit(":", 1)[1])
def secs(d):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", d)
    return int(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]
listen_port = port_of(ini["server"]["listen"])
admin_port = port_of(ini["admin"]["listen"])
check(ini["upstream"].get("resolve", "0") not in ("0", "0s"), "[upstream] resolve is not set")
check(ini["health_check"].get("path") == "/healthz", "[health_check] path is not /healthz")
check(ini["log"].get("access") == "off", "[log] access is not off")

# the Deployment
spec = dep["spec"]
pod = spec["template"]
check(spec["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(),
      "the Deployment's selector does not match its pod labels")
c = pod["spec"]["containers"][0]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
check(ports.get("http") == listen_port, f"container port http {ports.get('http')} != [server] listen {listen_port}")
check(ports.get("admin") == admin_port, f"container port admin {ports.get('admin')} != [admin] listen {admin_port}")
def probe_port(p):
    port = p["httpGet"]["port"]
    return ports.get(port) if isinstance(port, str) else port
for name in ("readinessProbe", "livenessProbe"):
    p = c.get(name)
    if p is None:
        errors.append(f"no {name}")
        continue
    check(p["httpGet"]["path"] == "/healthz", f"{name} path {p['httpGet']['path']!r}")
    check(probe_port(p) == admin_port, f"{name} port {p['httpGet']['port']!r} is not the admin port {admin_port}")
ann = pod["metadata"].get("annotations", {})
for k, v in (("prometheus.io/scrape", "true"), ("prometheus.io/port", str(admin_port)),
             ("prometheus.io/path", "/metrics")):
    check(ann.get(k) == v, f"pod annotation {k}: {ann.get(k)!r}, expected {v!r}")
args = c.get("args", [])
check(args[-2:] == ["-c", "/etc/roundhouse/roundhouse.ini"], f"args {args}")
mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
vols = {v["name"]: v for v in pod["spec"].get("volumes", [])}
cfgvol = [n for n, v in vols.items() if v.get("configMap", {}).get("name") == cm["metadata"]["name"]]
check(len(cfgvol) == 1 and mounts.get(cfgvol[0]) == "/etc/roundhouse",
      "the ConfigMap is not mounted at /etc/roundhouse")
grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
check(secs(ini["timeouts"]["shutdown"]) < grace,
      f"[timeouts] shutdown {ini['timeouts']['shutdown']} does not end within terminationGracePeriodSeconds {grace}")
sc = c.get("securityContext", {})
check(pod["spec"].get("securityContext", {}).get("runAsNonRoot") is True, "runAsNonRoot is not set")
check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not set")
check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
check(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities are not all dropped")

# the front Service
front = svcs["roundhouse"]["spec"]
check(front.get("type") == "LoadBalancer", f"Service roundhouse type {front.get('type')}")
check(front.get("externalTrafficPolicy") == "Local", "Service roundhouse: externalTrafficPolicy is not Local")
check(front["selector"].items() <= pod["metadata"]["labels"].items(), "Service roundhouse selects no roundhouse pod")
fp = front["ports"][0]
tp = ports.get(fp["targetPort"]) if isinstance(fp["targetPort"], str) else fp["targetPort"]
check(fp["port"] == 80 and tp == listen_port, f"Service roundhouse: {fp['port']} -> {tp}, expected 80 -> {listen_port}")

# the backend: the INI's backend line names the headless Service
backend = ini["upstream"]["backend"].split()[0]
host, bport = backend.rsplit(":", 1)
head = svcs["app-headless"]
labels = host.split(".")
check(labels[0] == head["metadata"]["name"],
      f"backend host {host!r} is not the headless Service {head['metadata']['name']!r}")
check(labels[2:4] == ["svc", "cluster"] or len(labels) == 1, f"backend host {host!r} is not a Service name")
check(head["spec"].get("clusterIP") == "None", "Service app-headless is not headless (clusterIP: None)")
check(int(bport) in [p["port"] for p in head["spec"]["ports"]], f"backend port {bport} is not a port of app-headless")
check(head["spec"].get("selector") == {"app": "app"}, f"app-headless selector {head['spec'].get('selector')}")

if errors:
    sys.exit("\n".join(errors))
print(f"backend {backend}, admin port {admin_port}, listen port {listen_port}")
PY
out=$(python3 "$E2E_TMP/check.py" "$manifest" "$ini" 2>&1) || fail "$out"
pass "the manifest: ConfigMap, Deployment, 2 Services; probes, annotations and names agree ($out)"

# ---- the ConfigMap's INI passes -t
rc=0
tout=$("$RH_BIN" -t -c "$ini" 2>&1) || rc=$?
[[ $rc == 0 ]] || fail "roundhouse -t rejected the ConfigMap's roundhouse.ini (exit $rc): $tout"
[[ -z $tout ]] || log "roundhouse -t said: $tout"
pass "roundhouse -t accepts the ConfigMap's roundhouse.ini"
