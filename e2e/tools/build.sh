#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called as "build_$tool" look unreachable
# Build and cache the Kubernetes parts that the end-to-end tests run locally:
#
#   kube-apiserver, kube-controller-manager, kube-scheduler   (k8s.io/kubernetes)
#   etcd, etcdctl                                              (go.etcd.io/etcd)
#   kwok + its stage YAML files                                (sigs.k8s.io/kwok)
#   helm                                                       (helm.sh/helm/v3)
#
# Everything is compiled from source fetched through the Go module proxy, so
# it works on machines that reach package registries but not download sites.
# Versions come from versions.env next to this script, and nowhere else.
#
# Usage:
#   e2e/tools/build.sh [options] [TOOL...]
#
#   TOOL is any of: kubernetes etcd kwok helm   (default: all of them)
#
#   (no option)        build whatever is missing from the cache
#   --print-env        build what is missing (progress goes to stderr), then
#                      print the KEY=value lines below on stdout
#   --print-env --no-build
#                      print the lines only; exit 3 if something is missing
#   --no-build         with no --print-env: only check the cache (exit 3 if
#                      something is missing)
#   --rebuild          throw away the cached copy of the selected tools first
#   --prune            delete cache directories of versions not pinned now
#   -h, --help         show this text
#
# Cache layout (one directory per tool and version; a directory is complete
# only if its .complete marker exists):
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/k8ssandra-operator-tools/
#     kubernetes-vX.Y.Z/bin/{kube-apiserver,kube-controller-manager,kube-scheduler}
#     etcd-vX.Y.Z/bin/{etcd,etcdctl}
#     kwok-vX.Y.Z/bin/kwok
#     kwok-vX.Y.Z/stages/*.yaml          default stage set (see below)
#     kwok-vX.Y.Z/stages/default.yaml    the same set in one multi-document file
#     kwok-vX.Y.Z/stages/optional/*.yaml other stages shipped by kwok
#     helm-vX.Y.Z/bin/helm
#     <tool>-<version>/src/go.{mod,sum} the wrapper module used for the build
#     logs/<tool>-<version>.log          output of the last build of that tool
#
#   K8S_TOOLS_CACHE_DIR, if set in the environment, replaces the root above.
#
# Lines printed by --print-env (stable names; values are absolute paths or
# versions, printed bare, or shell-quoted if they contain unusual characters,
# so `set -a; eval "$(e2e/tools/build.sh --print-env)"; set +a` works):
#
#   K8S_TOOLS_CACHE_DIR                   cache root
#   K8S_TOOLS_KUBERNETES_VERSION          e.g. v1.34.10
#   K8S_TOOLS_ETCD_VERSION                e.g. v3.6.16
#   K8S_TOOLS_KWOK_VERSION                e.g. v0.8.0
#   K8S_TOOLS_HELM_VERSION                e.g. v3.22.0
#   K8S_TOOLS_BIN_KUBE_APISERVER          path of kube-apiserver
#   K8S_TOOLS_BIN_KUBE_CONTROLLER_MANAGER path of kube-controller-manager
#   K8S_TOOLS_BIN_KUBE_SCHEDULER          path of kube-scheduler
#   K8S_TOOLS_BIN_ETCD                    path of etcd
#   K8S_TOOLS_BIN_ETCDCTL                 path of etcdctl
#   K8S_TOOLS_BIN_KWOK                    path of kwok
#   K8S_TOOLS_BIN_HELM                    path of helm
#   K8S_TOOLS_KWOK_STAGES_DIR             directory holding the default stages
#   K8S_TOOLS_KWOK_DEFAULT_STAGES         the default stages as one file, ready
#                                         for `kwok --config=<file>`
#
# Only the lines of the selected tools are printed (all by default).
#
# Default kwok stages (the set kwokctl uses with node leases enabled):
#   node-initialize.yaml, node-heartbeat-with-lease.yaml,
#   pod-ready.yaml, pod-complete.yaml, pod-delete.yaml
#
# Requirements: bash, go (new enough for the pinned modules; GOTOOLCHAIN is
# forced to "local" so no toolchain is ever downloaded), flock (optional),
# and a reachable Go module proxy + checksum database (the usual GOPROXY /
# GOSUMDB settings are honoured).
#
# Exit codes: 0 ok, 1 build failure, 2 usage error, 3 missing (--no-build).

set -euo pipefail

# Bump when the way binaries are built changes, so old cache entries are
# rebuilt even though the pinned versions did not move.
readonly RECIPE=2

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly ALL_TOOLS=(kubernetes etcd kwok helm)

log() { printf '[tools] %s\n' "$*" >&2; }

# fail TOOL STEP MESSAGE...
fail() {
	local tool=$1 step=$2
	shift 2
	printf '[tools] ERROR: %s: %s failed: %s\n' "$tool" "$step" "$*" >&2
	exit 1
}

usage() { sed -n '3,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

# ---------------------------------------------------------------- arguments

PRINT_ENV=0
NO_BUILD=0
REBUILD=0
PRUNE=0
TOOLS=()
while (($#)); do
	case $1 in
	--print-env) PRINT_ENV=1 ;;
	--no-build) NO_BUILD=1 ;;
	--rebuild) REBUILD=1 ;;
	--prune) PRUNE=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	kubernetes | etcd | kwok | helm) TOOLS+=("$1") ;;
	*)
		printf '[tools] ERROR: unknown argument %q (try --help)\n' "$1" >&2
		exit 2
		;;
	esac
	shift
done
((${#TOOLS[@]})) || TOOLS=("${ALL_TOOLS[@]}")
if ((NO_BUILD && REBUILD)); then
	log "ERROR: --no-build and --rebuild exclude each other"
	exit 2
fi

# ----------------------------------------------------------------- versions

[[ -r $SCRIPT_DIR/versions.env ]] || fail setup "reading versions" "$SCRIPT_DIR/versions.env is missing"
# shellcheck source=versions.env
source "$SCRIPT_DIR/versions.env"
for var in KUBERNETES_VERSION ETCD_VERSION KWOK_VERSION HELM_VERSION; do
	[[ -n ${!var:-} ]] || fail setup "reading versions" "$var is not set in versions.env"
	[[ ${!var} =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
		fail setup "reading versions" "$var=${!var} is not of the form vX.Y.Z"
done

CACHE_ROOT=${K8S_TOOLS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/k8ssandra-operator-tools}
readonly CACHE_ROOT

tool_version() {
	case $1 in
	kubernetes) echo "$KUBERNETES_VERSION" ;;
	etcd) echo "$ETCD_VERSION" ;;
	kwok) echo "$KWOK_VERSION" ;;
	helm) echo "$HELM_VERSION" ;;
	esac
}
tool_dir() { echo "$CACHE_ROOT/$1-$(tool_version "$1")"; }
tool_bins() {
	case $1 in
	kubernetes) echo kube-apiserver kube-controller-manager kube-scheduler ;;
	etcd) echo etcd etcdctl ;;
	kwok) echo kwok ;;
	helm) echo helm ;;
	esac
}
readonly KWOK_DEFAULT_STAGES=(node-initialize node-heartbeat-with-lease pod-ready pod-complete pod-delete)

# is_cached TOOL: the marker is present, of this recipe, and every file is there.
is_cached() {
	local dir b s
	dir=$(tool_dir "$1")
	[[ -f $dir/.complete ]] || return 1
	grep -qx "recipe=$RECIPE" "$dir/.complete" || return 1
	for b in $(tool_bins "$1"); do
		[[ -x $dir/bin/$b ]] || return 1
	done
	if [[ $1 == kwok ]]; then
		for s in "${KWOK_DEFAULT_STAGES[@]}" default; do
			[[ -s $dir/stages/$s.yaml ]] || return 1
		done
	fi
	return 0
}

# ---------------------------------------------------------- go environment

GO_READY=0
setup_go() {
	((GO_READY)) && return 0
	command -v go >/dev/null 2>&1 ||
		fail "$1" "looking for go" "the go command is not on PATH (install Go; the pinned modules need Go >= 1.26)"
	export GOTOOLCHAIN=local CGO_ENABLED=0 GO111MODULE=on GOWORK=off
	export GOFLAGS="-mod=mod -buildvcs=false"
	local v
	v=$(go env GOVERSION 2>/dev/null) || fail "$1" "running go" "\`go env GOVERSION\` did not work"
	log "using $v ($(command -v go)), GOPROXY=$(go env GOPROXY), GOMODCACHE=$(go env GOMODCACHE)"
	GO_READY=1
}

# The build of the current tool: its name (for messages), temp dir and log.
CUR_TOOL=""
CUR_TMP=""
CUR_LOG=""
cleanup() {
	if [[ -n $CUR_TMP && -d $CUR_TMP ]]; then
		chmod -R u+w "$CUR_TMP" 2>/dev/null || true
		rm -rf "$CUR_TMP"
	fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# step NAME CMD...: run CMD (in the wrapper module dir), its output to the log;
# on failure, show the end of the log and stop.
step() {
	local name=$1
	shift
	printf '\n[tools] ---- %s: %s\n+ %s\n' "$CUR_TOOL" "$name" "$*" >>"$CUR_LOG"
	if ! (cd "$CUR_TMP/src" && "$@") >>"$CUR_LOG" 2>&1; then
		printf '[tools] ---- last lines of %s:\n' "$CUR_LOG" >&2
		tail -n 25 "$CUR_LOG" | sed 's/^/[tools]   | /' >&2
		local hint=""
		if grep -qiE 'dial tcp|no such host|connection refused|i/o timeout|TLS handshake|proxyconnect|403 Forbidden|404 Not Found|410 Gone|not available|verifying .*go.mod|SECURITY ERROR' "$CUR_LOG"; then
			hint=" (looks like the Go module proxy or checksum database could not serve a module: check network access, GOPROXY and GOSUMDB, and that the pinned version exists there)"
		elif grep -qE 'requires go >=|go.mod requires go' "$CUR_LOG"; then
			hint=" (the local Go is too old for this module; GOTOOLCHAIN=local forbids fetching a newer one)"
		fi
		fail "$CUR_TOOL" "$name" "command exited non-zero${hint}; full log: $CUR_LOG"
	fi
}

# go_build PKG OUT LDFLAGS [TAGS]
go_build() {
	local pkg=$1 out=$2 ldflags=$3 tags=${4:-}
	local args=(build -trimpath -ldflags "-s -w $ldflags" -o "$out")
	[[ -n $tags ]] && args+=(-tags "$tags")
	step "go build $pkg" nice -n 10 go "${args[@]}" "$pkg"
}

# download MOD@VER: fetch a module (and its go.mod) into GOMODCACHE; sets
# DL_GOMOD, DL_DIR and DL_TIME (the tag's time, RFC 3339; may be empty).
download() {
	local json="$CUR_TMP/download.json"
	printf '\n[tools] ---- %s: downloading %s\n' "$CUR_TOOL" "$1" >>"$CUR_LOG"
	if ! (cd "$CUR_TMP/src" && go mod download -json "$1") >"$json" 2>>"$CUR_LOG"; then
		cat "$json" >>"$CUR_LOG"
		local err
		err=$(sed -n 's/^\t"Error": "\(.*\)",\{0,1\}$/\1/p' "$json" | head -n 1 | sed 's/\\n\\t/ /g; s/\\"/"/g')
		[[ -n $err ]] || err=$(tail -n 3 "$CUR_LOG" | tr '\n' ' ')
		fail "$CUR_TOOL" "downloading $1 from the Go module proxy" \
			"$err (check network access, GOPROXY=$(go env GOPROXY), GOSUMDB=$(go env GOSUMDB), and that the pinned version exists there; log: $CUR_LOG)"
	fi
	cat "$json" >>"$CUR_LOG"
	DL_GOMOD=$(sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p' "$json")
	DL_DIR=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' "$json")
	local info
	info=$(sed -n 's/^\t"Info": "\(.*\)",$/\1/p' "$json")
	DL_TIME=""
	if [[ -n $info && -r $info ]]; then
		DL_TIME=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info" | head -n 1)
	fi
	[[ -n $DL_GOMOD && -r $DL_GOMOD ]] || fail "$CUR_TOOL" "downloading $1" "no go.mod was returned (see $CUR_LOG)"
}

# new_wrapper NAME UPSTREAM_GOMOD: an empty main module in $CUR_TMP/src that
# keeps the upstream module's `godebug` settings (they only take effect in the
# main module, and they change runtime defaults of the binaries).
new_wrapper() {
	step "creating the wrapper module" go mod init "k8ssandra-operator-tools/$1"
	local gd
	gd=$(awk '
		/^godebug[ \t]*\(/ { inblk = 1; next }
		inblk && /^\)/ { inblk = 0; next }
		inblk { sub(/\/\/.*/, ""); if (NF) print $1; next }
		/^godebug[ \t]+[^(]/ { sub(/\/\/.*/, ""); print $2 }
	' "$2")
	local kv
	for kv in $gd; do
		step "copying godebug $kv" go mod edit "-godebug=$kv"
	done
}

# begin TOOL: lock, create the temp dir and log.
begin() {
	CUR_TOOL=$1
	mkdir -p "$CACHE_ROOT/logs" || fail "$1" "creating the cache directory" "cannot create $CACHE_ROOT"
	CUR_LOG="$CACHE_ROOT/logs/$1-$(tool_version "$1").log"
	: >"$CUR_LOG"
	CUR_TMP=$(mktemp -d "$CACHE_ROOT/.tmp-$1-$(tool_version "$1").XXXXXX")
	mkdir -p "$CUR_TMP/src" "$CUR_TMP/out/bin" "$CUR_TMP/out/src"
}

# finish TOOL: keep the wrapper's go.mod/go.sum, write the marker, then move
# the result into place with one rename.
finish() {
	local dir
	dir=$(tool_dir "$1")
	cp "$CUR_TMP/src/go.mod" "$CUR_TMP/src/go.sum" "$CUR_TMP/out/src/" 2>/dev/null || true
	printf 'recipe=%s\ntool=%s\nversion=%s\ngo=%s\nbuilt=%s\n' "$RECIPE" "$1" "$(tool_version "$1")" \
		"$(go env GOVERSION)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$CUR_TMP/out/.complete"
	if [[ -e $dir ]]; then
		chmod -R u+w "$dir" 2>/dev/null || true
		rm -rf "$dir"
	fi
	mv -T "$CUR_TMP/out" "$dir" || fail "$1" "moving the result into $dir" "mv failed"
	cleanup
	CUR_TMP=""
}

# ------------------------------------------------------------------- builds

build_kubernetes() {
	local ver=$KUBERNETES_VERSION
	local minor=${ver#v1.}
	minor=${minor%%.*}
	local staging_ver="v0.${ver#v1.}"

	download "k8s.io/kubernetes@$ver"
	local upstream=$DL_GOMOD when=${DL_TIME:-1970-01-01T00:00:00Z}

	# Staging modules are the ones k8s.io/kubernetes replaces with a
	# ./staging/src/... directory; when used as a dependency those replaces
	# are ignored, so point each at its published v0.<minor>.<patch>.
	local staging
	staging=$(awk '
		{ for (i = 2; i < NF; i++) if ($i == "=>" && $(i + 1) ~ /^\.\/staging\/src\//) print $(i - 1) }
	' "$upstream" | sort -u)
	if [[ -z $staging ]]; then
		# Fallback: every k8s.io module required at the placeholder v0.0.0.
		staging=$(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }' "$upstream" | sort -u)
	fi
	[[ -n $staging ]] || fail kubernetes "reading $upstream" "found no staging modules to map"
	log "kubernetes: mapping $(wc -w <<<"$staging") staging modules to $staging_ver"

	new_wrapper kubernetes "$upstream"
	local m edits=()
	for m in $staging; do
		edits+=("-replace=$m=$m@$staging_ver")
	done
	step "adding replace lines" go mod edit "${edits[@]}"
	step "resolving k8s.io/kubernetes@$ver and its dependencies" go get "k8s.io/kubernetes@$ver"

	# The same keys upstream's build stamps into both version packages.
	local ldf="" pkg key val
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		for key in gitVersion gitMajor gitMinor gitTreeState buildDate gitCommit; do
			case $key in
			gitVersion) val=$ver ;;
			gitMajor) val=1 ;;
			gitMinor) val=$minor ;;
			gitTreeState) val=clean ;;
			buildDate) val=$when ;;
			gitCommit) val="" ;; # not known here; empty beats the "$Format:%H$" placeholder
			esac
			ldf+=" -X $pkg.$key=$val"
		done
	done

	local b t0
	for b in $(tool_bins kubernetes); do
		t0=$SECONDS
		log "building $b $ver ..."
		CUR_TOOL=$b
		go_build "k8s.io/kubernetes/cmd/$b" "$CUR_TMP/out/bin/$b" "$ldf" "selinux,notest,grpcnotrace"
		local got
		got=$("$CUR_TMP/out/bin/$b" --version 2>&1) || true
		[[ $got == "Kubernetes $ver" ]] ||
			fail "$b" "checking the version" "\`$b --version\` printed '$got', expected 'Kubernetes $ver'"
		log "built $b $ver in $((SECONDS - t0))s ($(size_of "$CUR_TMP/out/bin/$b"))"
	done
	CUR_TOOL=kubernetes
}

build_etcd() {
	local ver=$ETCD_VERSION
	download "go.etcd.io/etcd/server/v3@$ver"
	local upstream=$DL_GOMOD
	download "go.etcd.io/etcd/etcdctl/v3@$ver"
	# The etcd modules' own replace lines point at sibling directories; as
	# dependencies they are ignored and the requires (all at the same tag)
	# resolve normally, so the wrapper needs no replace lines.
	new_wrapper etcd "$upstream"
	step "resolving etcd $ver" go get "go.etcd.io/etcd/server/v3@$ver" "go.etcd.io/etcd/etcdctl/v3@$ver"
	# etcd prints GitSHA in --version; say where the binary came from.
	local ldf="-X go.etcd.io/etcd/api/v3/version.GitSHA=module-$ver"
	local t0=$SECONDS
	log "building etcd $ver ..."
	CUR_TOOL=etcd
	go_build go.etcd.io/etcd/server/v3 "$CUR_TMP/out/bin/etcd" "$ldf"
	# Captured first: `grep -q` leaving early would kill etcd with SIGPIPE, and pipefail would
	# call that a wrong version.
	local got
	got=$("$CUR_TMP/out/bin/etcd" --version 2>&1) || true
	[[ $got == *"etcd Version: ${ver#v}"* ]] ||
		fail etcd "checking the version" "\`etcd --version\` printed '$got', expected ${ver#v}"
	log "built etcd $ver in $((SECONDS - t0))s ($(size_of "$CUR_TMP/out/bin/etcd"))"
	t0=$SECONDS
	log "building etcdctl $ver ..."
	CUR_TOOL=etcdctl
	go_build go.etcd.io/etcd/etcdctl/v3 "$CUR_TMP/out/bin/etcdctl" "$ldf"
	log "built etcdctl $ver in $((SECONDS - t0))s ($(size_of "$CUR_TMP/out/bin/etcdctl"))"
	CUR_TOOL=etcd
}

build_kwok() {
	local ver=$KWOK_VERSION
	download "sigs.k8s.io/kwok@$ver"
	local upstream=$DL_GOMOD src=$DL_DIR
	[[ -d $src/kustomize/stage ]] || fail kwok "finding the stage files" "$src/kustomize/stage does not exist"
	new_wrapper kwok "$upstream"
	step "resolving kwok $ver" go get "sigs.k8s.io/kwok@$ver"
	local t0=$SECONDS
	log "building kwok $ver ..."
	go_build sigs.k8s.io/kwok/cmd/kwok "$CUR_TMP/out/bin/kwok" "-X sigs.k8s.io/kwok/pkg/consts.Version=${ver#v}"
	"$CUR_TMP/out/bin/kwok" --version >/dev/null 2>&1 || fail kwok "checking the version" "\`kwok --version\` failed"
	log "built kwok $ver in $((SECONDS - t0))s ($(size_of "$CUR_TMP/out/bin/kwok"))"

	# Stage files: the default set flat in stages/, everything else that kwok
	# ships as stages under stages/optional/ (prefixed with its group).
	local out=$CUR_TMP/out/stages f base group
	mkdir -p "$out/optional"
	while IFS= read -r f; do
		base=$(basename "$f")
		group=${f#"$src/kustomize/stage/"}
		group=${group%/*}
		group=${group//\//-}
		case $group/$base in
		node-fast/node-initialize.yaml | node-heartbeat-with-lease/node-heartbeat-with-lease.yaml | \
			pod-fast/pod-ready.yaml | pod-fast/pod-complete.yaml | pod-fast/pod-delete.yaml)
			cp "$f" "$out/$base"
			;;
		*) cp "$f" "$out/optional/$group-$base" ;;
		esac
	done < <(find "$src/kustomize/stage" -name '*.yaml' -not -path '*/testdata/*' -not -name kustomization.yaml | sort)
	local s
	{
		printf '# The default kwok stages of kwok %s, concatenated by build.sh.\n' "$ver"
		for s in "${KWOK_DEFAULT_STAGES[@]}"; do
			[[ -s $out/$s.yaml ]] || fail kwok "copying the stage files" "$s.yaml was not found in $src/kustomize/stage"
			printf -- '---\n'
			sed '/^---[[:space:]]*$/d' "$out/$s.yaml"
		done
	} >"$out/default.yaml"
	chmod -R u+w,a+r "$out"
	log "kwok: copied $(find "$out" -name '*.yaml' | wc -l) stage files"
}

build_helm() {
	local ver=$HELM_VERSION
	download "helm.sh/helm/v3@$ver"
	local upstream=$DL_GOMOD
	new_wrapper helm "$upstream"
	step "resolving helm $ver" go get "helm.sh/helm/v3@$ver"
	# Helm's default Capabilities.KubeVersion follows its client-go version.
	step "reading the client-go version" sh -c 'go list -m -f "{{.Version}}" k8s.io/client-go >../client-go.version'
	local cg
	cg=$(cat "$CUR_TMP/client-go.version")
	[[ $cg =~ ^v0\.[0-9]+\. ]] || fail helm "reading the client-go version" "unexpected version '$cg'"
	local kmajor kminor
	kmajor=$(($(cut -d. -f1 <<<"${cg#v}") + 1))
	kminor=$(cut -d. -f2 <<<"$cg")
	local ldf="-X helm.sh/helm/v3/internal/version.version=$ver -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
	for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
		ldf+=" -X $pkg.k8sVersionMajor=$kmajor -X $pkg.k8sVersionMinor=$kminor"
	done
	local t0=$SECONDS
	log "building helm $ver ..."
	go_build helm.sh/helm/v3/cmd/helm "$CUR_TMP/out/bin/helm" "$ldf"
	local got
	got=$("$CUR_TMP/out/bin/helm" version --short 2>&1) || true
	[[ $got == "$ver"* ]] ||
		fail helm "checking the version" "\`helm version --short\` printed '$got', expected $ver"
	log "built helm $ver in $((SECONDS - t0))s ($(size_of "$CUR_TMP/out/bin/helm"))"
}

size_of() { du -h "$1" | cut -f1; }

fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# ensure TOOL: build it unless cached.
ensure() {
	local tool=$1 ver dir
	ver=$(tool_version "$tool")
	dir=$(tool_dir "$tool")
	mkdir -p "$CACHE_ROOT" || fail "$tool" "creating the cache directory" "cannot create $CACHE_ROOT"
	# One builder per tool at a time; a second caller waits, then finds it cached.
	local lockfd
	exec {lockfd}>"$CACHE_ROOT/.lock-$tool-$ver"
	if command -v flock >/dev/null 2>&1; then
		if ! flock -n "$lockfd"; then
			log "waiting: another build of $tool $ver is running"
			flock "$lockfd"
		fi
	fi
	if ((!REBUILD)) && is_cached "$tool"; then
		log "cached: $tool $ver ($dir) (built meanwhile by another run)"
		exec {lockfd}>&-
		return 0
	fi
	# Holding the lock, any temp dir of this tool is a leftover of a killed run.
	local stale
	for stale in "$CACHE_ROOT/.tmp-$tool-$ver".*; do
		[[ -d $stale ]] || continue
		log "removing the leftover $stale"
		chmod -R u+w "$stale" 2>/dev/null || true
		rm -rf "$stale"
	done
	setup_go "$tool"
	local t0=$SECONDS
	log "building $tool $ver into $dir (log: $CACHE_ROOT/logs/$tool-$ver.log) ..."
	begin "$tool"
	"build_$tool"
	finish "$tool"
	log "done: $tool $ver in $(fmt_secs $((SECONDS - t0)))"
	exec {lockfd}>&-
}

prune() {
	local d keep t name
	[[ -d $CACHE_ROOT ]] || return 0
	for d in "$CACHE_ROOT"/*-v*; do
		[[ -d $d ]] || continue
		name=$(basename "$d")
		keep=0
		for t in "${ALL_TOOLS[@]}"; do
			[[ $name == "$t-$(tool_version "$t")" ]] && keep=1
		done
		if ((!keep)); then
			log "pruning $d"
			chmod -R u+w "$d" 2>/dev/null || true
			rm -rf "$d"
		fi
	done
	find "$CACHE_ROOT" -maxdepth 1 -name '.tmp-*' -mmin +600 -exec rm -rf {} + 2>/dev/null || true
}

print_env() {
	local tool
	emit() { printf '%s=%q\n' "$1" "$2"; }
	emit K8S_TOOLS_CACHE_DIR "$CACHE_ROOT"
	for tool in "${TOOLS[@]}"; do
		local dir
		dir=$(tool_dir "$tool")
		case $tool in
		kubernetes)
			emit K8S_TOOLS_KUBERNETES_VERSION "$KUBERNETES_VERSION"
			emit K8S_TOOLS_BIN_KUBE_APISERVER "$dir/bin/kube-apiserver"
			emit K8S_TOOLS_BIN_KUBE_CONTROLLER_MANAGER "$dir/bin/kube-controller-manager"
			emit K8S_TOOLS_BIN_KUBE_SCHEDULER "$dir/bin/kube-scheduler"
			;;
		etcd)
			emit K8S_TOOLS_ETCD_VERSION "$ETCD_VERSION"
			emit K8S_TOOLS_BIN_ETCD "$dir/bin/etcd"
			emit K8S_TOOLS_BIN_ETCDCTL "$dir/bin/etcdctl"
			;;
		kwok)
			emit K8S_TOOLS_KWOK_VERSION "$KWOK_VERSION"
			emit K8S_TOOLS_BIN_KWOK "$dir/bin/kwok"
			emit K8S_TOOLS_KWOK_STAGES_DIR "$dir/stages"
			emit K8S_TOOLS_KWOK_DEFAULT_STAGES "$dir/stages/default.yaml"
			;;
		helm)
			emit K8S_TOOLS_HELM_VERSION "$HELM_VERSION"
			emit K8S_TOOLS_BIN_HELM "$dir/bin/helm"
			;;
		esac
	done
}

# --------------------------------------------------------------------- main

# The fleet's pod network is made with `ip` (iproute2): as root, install it where it is missing.
ensure_iproute2() {
	command -v ip >/dev/null 2>&1 && return 0
	if ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
		log "installing iproute2: the fleet's pod network needs the ip command"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y --no-install-recommends iproute2 >&2 ||
			{ apt-get update >&2 && apt-get install -y --no-install-recommends iproute2 >&2; } ||
			log "cannot install iproute2: fleets fall back to loopback pod addresses"
	else
		log "no ip command: fleets fall back to loopback pod addresses (install iproute2 as root)"
	fi
}
((NO_BUILD)) || ensure_iproute2

((PRUNE)) && prune

T_START=$SECONDS
missing=()
for tool in "${TOOLS[@]}"; do
	if ((!REBUILD)) && is_cached "$tool"; then
		log "cached: $tool $(tool_version "$tool") ($(tool_dir "$tool"))"
	elif ((NO_BUILD)); then
		missing+=("$tool")
	else
		ensure "$tool"
	fi
done

if ((${#missing[@]})); then
	for tool in "${missing[@]}"; do
		log "missing: $tool $(tool_version "$tool") is not in $CACHE_ROOT (run e2e/tools/build.sh to build it)"
	done
	exit 3
fi
((NO_BUILD)) || log "all done in $(fmt_secs $((SECONDS - T_START)))"
((PRINT_ENV)) && print_env
exit 0
