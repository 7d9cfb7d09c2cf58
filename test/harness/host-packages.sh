#!/bin/sh
# The Debian packages the suite needs beyond Node and Go, installed by `npm test` itself when it runs as root,
# so a fresh clone's two README commands do everything (CI included). Not root: says what is missing and goes on
# (the tests that need a package fail naming it; the real-node tests need root anyway).
#   nftables, libseccomp-dev, pkg-config: the real node (kube-proxy, the guard table; runc's build)
#   mmdebstrap, buildah: the real node's images (a Debian rootfs for the Node 24 base; the Dockerfile, daemonless)
#   chromium: the console's browser tests (driven by playwright-core, no browser download)
#   openssl: test/identity/ checks the sidecar's CSR with an independent implementation
set -eu
missing=""
have() { command -v "$1" >/dev/null 2>&1; }
have nft || missing="$missing nftables"
{ have pkg-config && pkg-config --exists libseccomp 2>/dev/null; } || missing="$missing libseccomp-dev pkg-config"
have mmdebstrap || missing="$missing mmdebstrap"
have buildah || missing="$missing buildah"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
have openssl || missing="$missing openssl"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && have apt-get; then
  echo "qbasis: installing Debian packages the tests need:$missing" >&2
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
else
  echo "qbasis: missing Debian packages:$missing (as root: apt-get install -y$missing); the tests that need them will fail saying so" >&2
fi
