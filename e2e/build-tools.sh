#!/usr/bin/env bash
# Builds the real control plane (etcd, kube-apiserver, kube-controller-manager, kubectl)
# from the pinned Go wrapper module in e2e/controlplane, and installs the pinned checking
# tools (helm, kubeconform, cyclonus, promtool). Everything lands in
# $DATAWARD_CACHE/bin-<stamp>, where the stamp is a hash of the pins: with nothing changed
# this is a no-op that prints the path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${DATAWARD_CACHE:-$HOME/.cache/dataward}
K8S_VERSION=v1.37.2
HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.7.0
CYCLONUS_VERSION=v0.5.6
# Prometheus 3.16's module (its Go tags are v0.3MM.P); promtool checks and unit-tests the
# chart's alerting rules.
PROMTOOL_VERSION=v0.316.0

# The stamp is what decides the binaries: the module pins and the tool versions (not this
# script's text, so a change to how it builds does not force a rebuild of the same binaries).
# A build flag that changes what a binary does is a pin too: helm's default Kubernetes version.
stamp=$( (cat "$here/controlplane/go.mod" "$here/controlplane/go.sum";
          echo "$K8S_VERSION $HELM_VERSION $KUBECONFORM_VERSION $CYCLONUS_VERSION $PROMTOOL_VERSION";
          echo "helm-default-kube-version") \
        | sha256sum | cut -c1-16)
bin="$cache/bin-$stamp"
tools=(etcd kube-apiserver kube-controller-manager kubectl helm kubeconform cyclonus promtool)

have_all() {
  for t in "${tools[@]}"; do [ -x "$bin/$t" ] || return 1; done
}
if have_all; then
  echo "$bin"
  exit 0
fi

# One build at a time: `make run` and `make test` started together share this cache, and a
# second build must wait for the first and then use what it built, never replace it.
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  echo "build-tools: another build is running; waiting for it" >&2
  flock 9
fi
if have_all; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build-tools: Go is required (go 1.26 or newer) and was not found on PATH" >&2; exit 1; }
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
work=$(mktemp -d "$cache/bin-$stamp.building.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION \
 -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
(
  cd "$here/controlplane"
  echo "build-tools: building kube-apiserver, kube-controller-manager, kubectl $K8S_VERSION" >&2
  go build -trimpath -ldflags "$ldflags" -o "$work/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl
  echo "build-tools: building etcd" >&2
  go build -trimpath -ldflags "-s -w" -o "$work/etcd" go.etcd.io/etcd/server/v3
)
echo "build-tools: installing helm $HELM_VERSION, kubeconform $KUBECONFORM_VERSION, cyclonus $CYCLONUS_VERSION, promtool $PROMTOOL_VERSION" >&2
# Helm's own release build (its Makefile) stamps the Kubernetes version it assumes when no
# cluster is asked (`helm template`, `helm lint`) from the k8s.io/client-go it is built with;
# a plain `go install` leaves the default at v1.20, below the chart's kubeVersion. Do the same.
helm_gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" \
  | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
client_go=$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$helm_gomod")  # v0.37.0
helm_kube_minor=$(echo "$client_go" | cut -d. -f2)
[ -n "$helm_kube_minor" ] || { echo "build-tools: no k8s.io/client-go in $helm_gomod" >&2; exit 1; }
helm_ldflags="-s -w"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags="$helm_ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$helm_kube_minor"
done
GOBIN="$work" go install -ldflags "$helm_ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
GOBIN="$work" go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
GOBIN="$work" go install "github.com/mattfenwick/cyclonus/cmd/cyclonus@$CYCLONUS_VERSION"
GOBIN="$work" go install "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION"
# A partial directory (an older, interrupted build) is moved aside, never built into.
[ -e "$bin" ] && mv "$bin" "$(mktemp -u "$bin.stale.XXXXXX")"
mv "$work" "$bin"
trap - EXIT
echo "build-tools: built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
