/* common/version.h — the one Remora version every program prints for --version (remora-control,
 * meshctl, remora-proxy, remora-injector, remora-init, remora-test-backend) and the injector
 * puts in its default image tags. Change it here and nowhere else.
 *
 * A build may set it without editing the file: bazel build --copt='-DRM_VERSION="1.2.3"' //...
 * (one define for every target, so the programs still agree).
 *
 * Not to be confused with $REMORA_VERSION, the sidecar's service version (a pod label).
 */
#ifndef REMORA_COMMON_VERSION_H
#define REMORA_COMMON_VERSION_H

#ifndef RM_VERSION
#define RM_VERSION "0.1.0"
#endif

#endif /* REMORA_COMMON_VERSION_H */
