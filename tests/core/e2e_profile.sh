#!/usr/bin/env bash
# e2e_profile.sh: MPSL_PROFILE=1. Each epoch's profile rows (epoch_metrics profile_*) split the
# epoch's wall time into phases that add up to it, with kernels by kind beside them; the run
# ends with the table on stderr; the numbers a run records are the same bit for bit with and
# without profiling (same binary, same machine); without MPSL_PROFILE nothing of it appears.
source "$(dirname "$0")/lib.sh"

cat > p.yaml <<'YAML'
name: profiled
seed: 3
data:
  dataset: {plugin: two_modalities, n_train: 600, n_test: 200}
  clients: 3
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 32}
    audio: {plugin: image_patch, patch: 4, dim: 32}
  encoder: {plugin: vit, depth: 1, heads: 2, mlp_ratio: 2}
  head: {plugin: classifier, pool: cls}
  fusion: early
strategy: {plugin: mpsl}
train:
  epochs: 2
  batch_size: 30
  optimizer: {name: adam, lr: 0.003}
YAML

rows() { sql "$1" "select group_concat(name || '=' || value, ' ') from (select name, value from epoch_metrics where run_id=$2 and name not like 'profile_%' and name not like '%seconds' and name != 'peak_rss_bytes' order by epoch, name)"; }
metric() { sql "$1" "select value from epoch_metrics where run_id=$2 and epoch=$3 and name='$4'"; }

for strategy in mpsl fedavg centralized; do
  expect_ok "$strategy without profiling" "$MPSL" run p.yaml --db $strategy.db --set strategy.plugin=$strategy
  check "$strategy: no profile table without MPSL_PROFILE" not grep -q 'MPSL_PROFILE' "$WORK/err"
  check "$strategy: no profile rows without MPSL_PROFILE" \
    [ "$(sql $strategy.db "select count(*) from epoch_metrics where name like 'profile_%'")" = 0 ]
  expect_ok "$strategy with MPSL_PROFILE=1" env MPSL_PROFILE=1 "$MPSL" run p.yaml --db $strategy.db \
    --set strategy.plugin=$strategy
  cp "$WORK/err" $strategy.err
  check "$strategy: the table is printed" grep -q '^profile of run 2 (MPSL_PROFILE=1), wall time: ' $strategy.err
  check "$strategy: the table names phases" grep -q '^  encode  *[0-9.]* *[0-9.]*% *[0-9]*$' $strategy.err
  check "$strategy: and kernels" grep -q '^  linear_forward  *[0-9.]* *[0-9.]*% *[0-9]*$' $strategy.err
  check "$strategy: the same figures with and without profiling" \
    [ "$(rows $strategy.db 1)" = "$(rows $strategy.db 2)" ]
  for e in 0 1; do
    wall=$(metric $strategy.db 2 $e profile_wall_seconds)
    parts=$(sql $strategy.db "select sum(value) from epoch_metrics where run_id=2 and epoch=$e and name like 'profile_%_seconds' and name not like 'profile_kernel_%' and name != 'profile_wall_seconds'")
    check "$strategy epoch $e: phases + other ($parts) = wall ($wall)" same_numbers "$parts" "$wall" 1e-9
    train=$(metric $strategy.db 2 $e epoch_seconds)
    check "$strategy epoch $e: the profiled wall $wall covers the epoch's training time $train" \
      awk -v w="$wall" -v t="$train" 'BEGIN { exit !(w >= t && w < t + 5) }'
    for name in encode optimizer evaluation database kernel_linear_forward kernel_linear_backward; do
      v=$(metric $strategy.db 2 $e profile_${name}_seconds)
      check "$strategy epoch $e: profile_${name}_seconds recorded ($v)" awk -v v="$v" 'BEGIN { exit !(v > 0) }'
    done
  done
done
for name in tokenize messages loss data; do
  check "mpsl: profile_${name}_seconds recorded" [ -n "$(metric mpsl.db 2 1 profile_${name}_seconds)" ]
done
check "centralized sends no messages" [ -z "$(metric centralized.db 2 1 profile_messages_seconds)" ]

# Under MPI each rank prints its own table; rank 0 records its own.
if command -v mpirun >/dev/null && ! "$MPSL" run p.yaml --db probe.db --set transport.mode=mpi \
     --set train.epochs=1 2>&1 | grep -q "built without MPI"; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
  mpirun_args=(--oversubscribe --bind-to none -n 3)
  [ -n "${ASAN_OPTIONS:-}" ] && mpirun_args+=(-x "ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0")
  expect_ok "mpsl with MPSL_PROFILE=1 under mpirun -n 3" mpirun "${mpirun_args[@]}" \
    -x MPSL_PROFILE=1 "$MPSL" run p.yaml --db mpi.db
  check "rank 0's table" grep -q 'profile of run 1, rank 0 (MPSL_PROFILE=1)' "$WORK/err"
  check "the client ranks' tables" [ "$(grep -c 'profile of run 1, a client rank' "$WORK/err")" = 2 ]
  check "rank 0 waited on the network" [ -n "$(metric mpi.db 1 1 profile_network_wait_seconds)" ]
  check "the same figures under MPI" same_numbers "$(rows mpsl.db 2 | tr ' =' '\n\n' | grep -v '[a-z]')" \
    "$(rows mpi.db 1 | tr ' =' '\n\n' | grep -v '[a-z]')" 1e-6
else
  echo "note: no MPI here; the MPI part of this test did not run" >&2
fi
finish
