#!/bin/sh
# cuda_refs.sh DEST REF... — build the GPU binaries of other git refs (branches, commits) for an A/B run on
# the device machine beside the staged main binaries: each REF is checked out in a worktree under
# build-refs/, built like build-gpu (Release, sm_90, no OpenBLAS) and its bench_cuda, test_cuda_ops and
# test_cuda_models copied (stripped) into DEST/<ref with / as ->/. The shared libraries are those of
# DEST/lib (scripts/cuda_stage.sh build-gpu DEST first): run them as
#   LD_LIBRARY_PATH=DEST/lib DEST/exp-attn-warp-softmax/bench_cuda ...
set -eu
D=$1; shift
R=$(git rev-parse --show-toplevel)
for ref in "$@"; do
  name=$(echo "$ref" | tr '/' '-')
  wt="$R/build-refs/$name"
  [ -d "$wt" ] || git -C "$R" worktree add --detach "$wt" "$ref" >/dev/null
  git -C "$wt" checkout -q --detach "$ref"
  cmake -S "$wt" -B "$wt/build-gpu" -DCMAKE_BUILD_TYPE=Release -DALLOY_OPENBLAS=OFF -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
  cmake --build "$wt/build-gpu" -j2 --target bench_cuda test_cuda_ops test_cuda_models >/dev/null
  mkdir -p "$D/$name"
  for f in bench_cuda test_cuda_ops test_cuda_models; do strip -o "$D/$name/$f" "$wt/build-gpu/$f"; done
  echo "$ref -> $D/$name ($(git -C "$wt" rev-parse --short HEAD))"
done
