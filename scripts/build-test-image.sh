#!/usr/bin/env bash
# Builds a small OCI image (busybox + Debian's python3) as an oci-archive, for podman tests
# (tests/tests/podman.rs): $1 = output dir; prints the path of image.tar
# (localhost/carapace-test:latest). Needs umoci, skopeo, and apt-get download access.
set -euo pipefail
out=${1:?output dir}
mkdir -p "$out"; cd "$out"
rm -rf rootfs layout debs
mkdir -p rootfs/{bin,etc,proc,sys,dev,tmp,root} debs
cp /bin/busybox rootfs/bin/
for app in $(/bin/busybox --list); do [ "$app" = busybox ] || ln -sf busybox "rootfs/bin/$app"; done
echo 'root:x:0:0:root:/root:/bin/sh' > rootfs/etc/passwd
echo 'root:x:0:' > rootfs/etc/group
(cd debs && apt-get download -q python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libexpat1 zlib1g libffi8 libcrypt1 libbz2-1.0 liblzma5 libuuid1 >/dev/null)
for d in debs/*.deb; do dpkg -x "$d" rootfs; done
mkdir -p rootfs/usr/bin && ln -sf python3.11 rootfs/usr/bin/python3
umoci init --layout layout
umoci new --image layout:t
umoci insert --image layout:t rootfs /
umoci config --image layout:t --config.cmd=/bin/sh --config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
skopeo copy -q oci:layout:t oci-archive:image.tar:localhost/carapace-test:latest
echo "$out/image.tar"
