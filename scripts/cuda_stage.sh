#!/bin/sh
# cuda_stage.sh BUILD DEST [PACK] — copy the GPU binaries of BUILD (stripped) and the shared libraries they
# need that a bare CUDA machine lacks (not libc/libstdc++/CUDA's own) into DEST/ and DEST/lib, for
# running on a device machine without the build dependencies: LD_LIBRARY_PATH=DEST/lib DEST/bench_cuda ...
# Configure BUILD with -DALLOY_OPENBLAS=OFF to keep DEST small. PACK (e.g. .cuda-pack/bin.tar.xz): also
# an xz tarball of DEST (~4 MB instead of ~22, for carrying it to the device; unpack there with tar -xJf).
set -eu
B=$1 D=$2 P=${3:-}
mkdir -p "$D/lib"
for f in alloy bench_cuda bench_barrier bench_handoff bench_serve test_cuda_ops test_cuda_models; do
  [ -f "$B/$f" ] && strip -o "$D/$f" "$B/$f"
done
ldd "$D"/* 2>/dev/null | awk '/=>/ {print $3}' | sort -u | while read -r l; do
  case "$(basename "$l")" in
    libc.so*|libm.so*|libstdc++*|libgcc_s*|libpthread*|libdl.so*|librt.so*|ld-linux*|libcuda*|libcublas*|libnvrtc*) ;;
    *) cp -L "$l" "$D/lib/" ;;
  esac
done
du -sh "$D"
if [ -n "$P" ]; then
  mkdir -p "$(dirname "$P")"
  tar -cJf "$P" "$D"
  du -sh "$P"
fi
