#!/usr/bin/env bash
# Deploy EcoMind to ECS: register both task definitions, run the migration task,
# WAIT for it and fail on a non-zero exit code, then roll the API service and wait
# until it is stable.
#
# Usage: deploy/ecs/deploy.sh staging|production [--dry-run]
#
#   --dry-run  print the AWS calls instead of making them (nothing is sent);
#              DRY_RUN_MIGRATION_EXIT_CODE=N plays a migration that exits with N,
#              DRY_RUN_MIGRATION_EXIT_CODE=None one that never ran.
#
# Needs the AWS CLI v2 and python3. Names come from the environment model and
# account facts from deploy/environments/ENV.env, both through deploy/render.py.
set -euo pipefail

usage() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

here=$(cd "$(dirname "$0")" && pwd)
deploy_dir=$(dirname "$here")
env_name=""
dry_run=false
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=true ;;
    -h|--help) usage; exit 0 ;;
    staging|production) env_name=$arg ;;
    *) echo "deploy: unknown argument '$arg' (the environment is staging or production)" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -z "$env_name" ]; then
  echo "deploy: name the environment (staging or production)" >&2
  usage >&2
  exit 2
fi

param() { # the value of NAME, as deploy/render.py fills templates
  python3 "$deploy_dir/render.py" "$env_name" --get "$1" || exit 2
}

cluster=$(param CLUSTER)
service=$(param SERVICE)
region=$(param AWS_REGION)
account=$(param AWS_ACCOUNT_ID)
subnets=$(param SUBNETS)
security_groups=$(param SECURITY_GROUPS)
migration_logs=$(param MIGRATION_LOG_GROUP)
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

for task in migration api; do
  python3 "$deploy_dir/render.py" "$env_name" "$here/$task.taskdef.json" > "$workdir/$task.json"
done

# aws: run the AWS CLI, or in --dry-run print the call and answer what the next
# step needs, so the whole sequence can be read and tested offline.
aws() {
  if ! $dry_run; then
    command aws --region "$region" "$@"
    return
  fi
  printf 'aws --region %s' "$region" >&2
  printf ' %q' "$@" >&2
  printf '\n' >&2
  case "$1 $2" in
    "ecs register-task-definition") # the family of the file given, as AWS would answer
      local file=${4#file://}
      echo "arn:aws:ecs:$region:$account:task-definition/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["family"])' "$file"):1" ;;
    "ecs run-task") echo "arn:aws:ecs:$region:$account:task/$cluster/dry-run" ;;
    "ecs describe-tasks") echo "${DRY_RUN_MIGRATION_EXIT_CODE:-0}" ;;
    *) : ;;
  esac
}

step() { echo "==> $*" >&2; }

step "register task definitions ($env_name)"
migration_td=$(aws ecs register-task-definition --cli-input-json "file://$workdir/migration.json" \
  --query 'taskDefinition.taskDefinitionArn' --output text)
api_td=$(aws ecs register-task-definition --cli-input-json "file://$workdir/api.json" \
  --query 'taskDefinition.taskDefinitionArn' --output text)

step "run the migration task"
network="awsvpcConfiguration={subnets=[$subnets],securityGroups=[$security_groups],assignPublicIp=DISABLED}"
task_arn=$(aws ecs run-task --cluster "$cluster" --task-definition "$migration_td" --launch-type FARGATE \
  --network-configuration "$network" --started-by ecomind-deploy --query 'tasks[0].taskArn' --output text)
if [ -z "$task_arn" ] || [ "$task_arn" = "None" ]; then
  echo "deploy: the migration task did not start (see: aws ecs describe-tasks)" >&2
  exit 1
fi

step "wait for the migration task to stop"
aws ecs wait tasks-stopped --cluster "$cluster" --tasks "$task_arn"

step "check the migration's exit code"
exit_code=$(aws ecs describe-tasks --cluster "$cluster" --tasks "$task_arn" \
  --query "tasks[0].containers[?name=='migration'].exitCode | [0]" --output text)
if [ "$exit_code" = "None" ] || [ -z "$exit_code" ]; then
  echo "deploy: the migration task stopped without running its container (no exit code); the API was not updated." >&2
  echo "        why: aws ecs describe-tasks --cluster $cluster --tasks $task_arn --region $region --query 'tasks[0].stoppedReason'" >&2
  exit 1
fi
if [ "$exit_code" != "0" ]; then
  echo "deploy: the migration task exited with '$exit_code'; the API was not updated." >&2
  echo "        logs: aws logs tail $migration_logs --region $region" >&2
  exit 1
fi

step "update the API service"
aws ecs update-service --cluster "$cluster" --service "$service" --task-definition "$api_td" \
  --query 'service.serviceArn' --output text >/dev/null

step "wait for the service to be stable"
aws ecs wait services-stable --cluster "$cluster" --services "$service"
step "deployed $api_td to $cluster/$service"
