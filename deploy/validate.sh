#!/usr/bin/env bash
# Validate every deployment artifact with the tool its owner publishes, offline.
#
#   deploy/validate.sh                 all checks on the real artifacts
#   deploy/validate.sh CHECK FILE...   one check on the given files (the tests use
#                                      this on broken copies, expecting a failure)
#
# CHECK: hadolint shellcheck compose ecs iam cfn k8s crds checkov grafana
# Tools come from .venv-deploy, deploy/crds/node_modules and deploy/grafana/node_modules
# (make deploy-tools) and kubectl (kustomize v5).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=${DEPLOY_TOOLS:-$root/.venv-deploy/bin}
python=${PYTHON:-$root/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check_hadolint() { "$tools/hadolint" "$@"; }
check_shellcheck() { "$tools/shellcheck" "$@"; }
check_compose() { "$tools/check-jsonschema" --builtin-schema vendor.compose-spec "$@"; }
check_ecs() { "$python" "$root/deploy/ecs/validate_taskdefs.py" "$@"; }
check_cfn() { "$tools/cfn-lint" "$@"; }
check_iam() { # parliament reads stdin when it is not a terminal: give it --string
  local file out status=0
  for file in "$@"; do
    out=$("$tools/parliament" --string "$(cat "$file")" </dev/null) || status=1
    if [ -n "$out" ]; then echo "$file: $out"; status=1; fi
  done
  return $status
}
check_k8s() { "$tools/kubernetes-validate" --strict --quiet "$@"; }
check_crds() { # External Secrets resources against their CRD schemas (deploy/crds/validate.mjs)
  "$tools/python" -c 'import json, sys, yaml
docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]
print(json.dumps(docs))' "$@" | node "$root/deploy/crds/validate.mjs"
}
check_grafana() { # dashboards against Grafana's published schema (deploy/grafana/validate.mjs)
  node "$root/deploy/grafana/validate.mjs" "$@"
}
check_checkov() {
  local args=() file
  for file in "$@"; do
    if [ -d "$file" ]; then args+=(-d "$file"); else args+=(-f "$file"); fi
  done
  # checkov skips a file it cannot parse and still exits 0: demand a scan report.
  local out status=0
  out=$("$tools/checkov" --skip-download --quiet --compact --framework cloudformation dockerfile kubernetes \
    "${args[@]}") || status=$?
  printf '%s\n' "$out"
  if ! grep -q "Passed checks:" <<<"$out"; then
    echo "checkov scanned nothing (unparseable input?)"
    return 1
  fi
  return $status
}

if [ "$#" -gt 0 ]; then
  check=$1
  shift
  "check_$check" "$@"
  exit
fi

# Render what is templated, for both environments.
for env in staging production; do
  for task in api migration; do
    python3 "$root/deploy/render.py" "$env" "$root/deploy/ecs/$task.taskdef.json" > "$work/$env-$task.taskdef.json"
  done
  for policy in "$root"/deploy/iam/*.policy.json; do
    python3 "$root/deploy/render.py" "$env" "$policy" > "$work/$env-$(basename "$policy")"
  done
  python3 "$root/deploy/render.py" "$env" "$root/deploy/k8s" > "$work/$env-k8s.yaml"
  python3 "$root/deploy/render.py" "$env" "$root/deploy/k8s/cluster-secret-store.yaml" > "$work/$env-store.yaml"
  mkdir -p "$work/cfn"
  for template in "$root"/deploy/cloudformation/*.yaml; do
    python3 "$root/deploy/render.py" "$env" "$template" > "$work/cfn/$env-$(basename "$template")"
  done
done
for trust in "$root"/deploy/iam/*-trust.json; do
  python3 "$root/deploy/render.py" staging "$trust" | python3 -m json.tool >/dev/null
done

failed=()
run() {
  local name=$1
  shift
  if "$@" > "$work/log" 2>&1; then
    echo "ok    $name"
  else
    echo "FAIL  $name"
    sed 's/^/      /' "$work/log"
    failed+=("$name")
  fi
}
run "hadolint: Dockerfiles" check_hadolint "$root/api/Dockerfile" "$root/api/Dockerfile.migrate"
run "shellcheck: scripts" check_shellcheck "$root/deploy/ecs/deploy.sh" "$root/deploy/validate.sh" "$root"/scripts/*.sh \
  "$root"/api/scripts/*.sh "$root/.ci/run"
run "compose-spec: docker-compose.yml" check_compose "$root/docker-compose.yml"
run "botocore: ECS task definitions" check_ecs "$work"/*.taskdef.json
run "parliament: IAM policies" check_iam "$work"/*.policy.json
run "cfn-lint: CloudFormation (rendered)" check_cfn "$work"/cfn/*.yaml
run "kubernetes-validate: overlays" check_k8s "$work"/*-k8s.yaml
run "External Secrets CRD schemas: ExternalSecret, ClusterSecretStore" check_crds "$work"/*-k8s.yaml "$work"/*-store.yaml
run "checkov: CloudFormation, Dockerfiles, Kubernetes" check_checkov "$work/cfn" \
  "$root/api/Dockerfile" "$root/api/Dockerfile.migrate" "$work"/*-k8s.yaml
run "grafana: dashboard generated from api/app/telemetry.py" python3 "$root/deploy/grafana/dashboard.py" --check
run "@grafana/schema: Grafana dashboards" check_grafana "$root"/deploy/grafana/dashboards/*.json
if [ ${#failed[@]} -gt 0 ]; then
  echo "validate-deploy: ${#failed[@]} check(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "validate-deploy: all checks passed"
