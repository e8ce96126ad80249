#!/usr/bin/env bash
# Smoke-tests the revision of a Cloud Run service that carries a traffic tag,
# before any traffic reaches it (cloudbuild.yaml). Finds the tag's URL, then
# checks /healthz and /readyz (Redis reachable), and for the backend that its
# OpenAPI document is served. With an impersonated service account the
# requests carry its ID token (the worker admits only the push account).
#   scripts/smoke_test.sh <service> <region> <tag> [service-account-to-impersonate]
set -euo pipefail

service=${1:?usage: smoke_test.sh <service> <region> <tag> [impersonate]}
region=${2:?region}
tag=${3:?tag}
impersonate=${4:-}

url=$(gcloud run services describe "$service" --region "$region" --format=json \
    | python3 -c 'import json, sys
tag = sys.argv[1]
for t in json.load(sys.stdin)["status"].get("traffic", []):
    if t.get("tag") == tag:
        print(t["url"])
        break' "$tag")
if [[ -z "$url" ]]; then
    echo "smoke_test: service $service has no revision tagged $tag" >&2
    exit 1
fi
echo "smoke_test: $service tag $tag at $url"

auth=()
if [[ -n "$impersonate" ]]; then
    token=$(gcloud auth print-identity-token --impersonate-service-account="$impersonate" \
        --audiences="$url" --include-email)
    auth=(-H "Authorization: Bearer $token")
fi

check() {
    local path=$1 attempt
    for attempt in 1 2 3 4 5; do
        if curl --fail --silent --show-error --max-time 10 "${auth[@]}" -o /dev/null "$url$path"; then
            echo "smoke_test: $path ok"
            return 0
        fi
        sleep $((attempt * 2))
    done
    echo "smoke_test: $service $path failed" >&2
    return 1
}

check /healthz
check /readyz
if [[ "$service" == "backend" ]]; then
    check /openapi.json
fi
