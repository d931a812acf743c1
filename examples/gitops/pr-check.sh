#!/usr/bin/env bash
# What a pull request to the GitOps repository must pass, and what it will change.
#
#   pr-check.sh BASE_DIR HEAD_DIR [REPORT]
#
# BASE_DIR and HEAD_DIR are checkouts of the target branch and of the pull request, laid
# out as policies/*.yaml (PrivacyPolicies) and stores/**/*.yaml (PersonalDataStores and
# anything else). It runs `dataward check` on the pull request (the CRD schemas, their CEL
# rules and the store-within-policy rules, exactly as admission will), then `dataward render`
# on both sides and writes the difference in the children the operator will create, as
# Markdown, appended to REPORT (default: stdout). Exit status: 1 when the check finds a problem.
set -euo pipefail

base=${1:?usage: pr-check.sh BASE_DIR HEAD_DIR [REPORT]}
head=${2:?usage: pr-check.sh BASE_DIR HEAD_DIR [REPORT]}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

render_all() {  # render every store file of a tree, in a stable order
  local tree=$1 out=$2
  local policies
  policies=$work/policies-$(basename "$out")
  : >"$out"
  [ -d "$tree/stores" ] || return 0
  # All policies in one file, as `dataward render --policy` takes one.
  find "$tree/policies" -name '*.yaml' -print0 2>/dev/null | sort -z \
    | xargs -0 -r awk 'FNR==1 && NR>1 {print "---"} {print}' >"$policies"
  find "$tree/stores" -name '*.yaml' -print0 | sort -z | while IFS= read -r -d '' file; do
    if grep -q '^kind: PersonalDataStore' "$file"; then
      dataward render -f "$file" --policy "$policies" >>"$out"
    fi
  done
}

status=0
{
  echo "## dataward check"
  echo
  echo '```'
  if ! dataward check -f "$head/policies" -f "$head/stores" --require-policies 2>&1; then
    status=1
  fi
  echo '```'
} >"$work/check.md"

render_all "$base" "$work/base.yaml" || true
if [ "$status" = 0 ]; then
  render_all "$head" "$work/head.yaml"
else
  : >"$work/head.yaml"
fi

if [ -n "${3:-}" ]; then
  exec >>"$3"  # appended: GitHub's job summary may already hold other steps' output
fi
{
  cat "$work/check.md"
  echo
  echo "## What the operator will change"
  echo
  if [ "$status" != 0 ]; then
    echo "Not rendered: fix the problems above first."
  elif diff -q "$work/base.yaml" "$work/head.yaml" >/dev/null; then
    echo "No change to any store's children."
  else
    echo '```diff'
    diff -u --label base --label "pull request" "$work/base.yaml" "$work/head.yaml" || true
    echo '```'
  fi
}
exit "$status"
