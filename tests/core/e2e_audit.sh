#!/usr/bin/env bash
# e2e_audit.sh: the label-leakage audit (metrics.leakage_audit). On plain MPSL, where the
# server holds the head, the sign attack recovers every label from the logit gradients, every
# epoch; with the head on the clients there are no logit gradients, and the norm, direction
# and clustering attacks run on the feature gradients; label counts are estimated from each
# client's head-bias update (FedAvg's round, U-shaped MPSL's epoch). The audit changes nothing a run records or sends (its
# labels travel on a path of their own, counted nowhere and absent from the message trace); a
# strategy's server role that tries to receive the layer's internal kinds, or to draw the
# clients' data itself, is refused every time; a defence lowers the sign attack's success; the figures are the same in one process
# and under `mpirun -n 3` (skipped without MPI); a retrieval dataset is refused.
source "$(dirname "$0")/lib.sh"

cat > fusion.yaml <<'YAML'
name: audit
seed: 3
data:
  dataset: {plugin: two_modalities, n_train: 1200, n_test: 300}
  clients: 4
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 32}
    audio: {plugin: image_patch, patch: 4, dim: 32}
  encoder: {plugin: token_mlp, depth: 1, hidden: 64}
  head: {plugin: classifier, pool: mean}
  fusion: early
strategy: {plugin: mpsl}
train:
  epochs: 2
  batch_size: 32
  optimizer: {name: adam, lr: 0.003}
metrics: {leakage_audit: true}
YAML
m() { sql a.db "select value from epoch_metrics where run_id=$1 and name='$2' order by epoch"; }
in01() { awk '{ if ($1 < 0 || $1 > 1) bad = 1; n++ } END { exit bad || n == 0 }' <<<"$1"; }

expect_ok "mpsl, audited" "$MPSL" run fusion.yaml --db a.db
check "sign attack: every label, every epoch ($(m 1 audit_sign_acc | tr '\n' ' '))" [ "$(sql a.db "select count(*) from epoch_metrics where run_id=1 and name='audit_sign_acc' and value = 1")" = 2 ]
for f in audit_norm_auc_logit_grads audit_direction_auc_logit_grads audit_cluster_acc_logit_grads audit_cluster_acc_activations audit_majority_acc; do
  check "mpsl: $f in [0,1] both epochs" in01 "$(m 1 $f)"
  check "mpsl: $f recorded twice" [ "$(m 1 $f | wc -l)" = 2 ]
done
check "mpsl: every message's rows matched their labels" [ -z "$(m 1 audit_unmatched_messages)" ]

expect_ok "mpsl, not audited" "$MPSL" run fusion.yaml --db a.db --set metrics.leakage_audit=false
fig() { sql a.db "select group_concat(quote(value), ' ') from (select value from epoch_metrics where run_id=$1 and name in ('train_loss', 'train_acc', 'test_acc', 'test_loss') order by epoch, name)"; }
check "the audit changes no figure of the run" [ "$(fig 1)" = "$(fig 2)" ]
comm() { sql a.db "select group_concat(epoch || client || direction || kind || bytes || ':' || messages, ' ') from (select * from comm where run_id=$1 order by epoch, client, direction, kind)"; }
check "the audit's labels are counted nowhere" [ "$(comm 1)" = "$(comm 2)" ]
MPSL_MESSAGE_TRACE="$WORK/on.txt" expect_ok "traced, audited" "$MPSL" run fusion.yaml --db t.db --set train.epochs=1
MPSL_MESSAGE_TRACE="$WORK/off.txt" expect_ok "traced, not audited" "$MPSL" run fusion.yaml --db t.db --set train.epochs=1 --set metrics.leakage_audit=false
check "the trace is the same with the audit (no label message)" cmp -s on.txt off.txt
check "no int32 payload in the trace" [ "$(awk '$4 == "i32"' on.txt | wc -l)" = 0 ]

expect_ok "u-shaped, audited" "$MPSL" run fusion.yaml --db a.db --set strategy.head_on_client=true
check "u-shaped: no logit gradients, no sign attack" [ -z "$(m 3 audit_sign_acc)" ]
for f in audit_norm_auc_feature_grads audit_direction_auc_feature_grads audit_cluster_acc_feature_grads audit_cluster_acc_activations audit_hist_error; do
  check "u-shaped: $f in [0,1] both epochs" in01 "$(m 3 $f)"
done
check "u-shaped: a histogram error per client and epoch, from its head uploads" \
  [ "$(sql a.db "select count(*) from client_metrics where run_id=3 and name='audit_hist_error'")" = 8 ]

expect_ok "fedavg, audited" "$MPSL" run fusion.yaml --db a.db --set "strategy={plugin: fedavg}" \
  --set 'data.partition={scheme: dirichlet, alpha: 0.5, min_per_client: 50}'
check "fedavg: histogram error in [0,1]" in01 "$(m 4 audit_hist_error)"
check "fedavg: the uniform guess's error recorded" in01 "$(m 4 audit_hist_error_uniform)"
check "fedavg: one histogram error per client and round" [ "$(sql a.db "select count(*) from client_metrics where run_id=4 and name='audit_hist_error'")" = 8 ]
check "fedavg: no gradient attacks" [ -z "$(sql a.db "select name from epoch_metrics where run_id=4 and name like 'audit_sign%'")" ]

expect_ok "mpsl, gaussian defence" "$MPSL" run fusion.yaml --db a.db --set strategy.defence=gaussian --set strategy.defence_noise=10
check "a strong gaussian defence lowers the sign attack below 0.9 ($(m 5 audit_sign_acc | tr '\n' ' '))" \
  awk -v a="$(m 5 audit_sign_acc | head -1)" 'BEGIN { exit !(a < 0.9) }'

# The server's code cannot receive the audit's labels: every internal kind is refused.
expect_ok "a snooping server" "$MPSL" run fusion.yaml --db a.db --set "strategy={plugin: label_snoop}"
check "drawing the clients' data on the server refused, each epoch" [ "$(sql a.db "select count(*) from epoch_metrics where run_id=6 and name='snoop_batch_refused' and value = 1")" = 2 ]
check "every attempt refused (4 clients x 16 kinds, each epoch)" [ "$(sql a.db "select count(*) from epoch_metrics where run_id=6 and name='snoop_refused' and value = 64")" = 2 ]

expect_refusal "retrieval is refused" "leakage_audit" "classification" -- \
  "$MPSL" run fusion.yaml --db bad.db --set "data.dataset={plugin: two_views_retrieval, n_train: 200, n_test: 50}" \
  --set "model.tokenizers={image: {plugin: image_patch, patch: 4, dim: 32}, text: {plugin: text, vocab: bytes, pool_to_one: true, cls: false, max_tokens: 24, dim: 32}}" \
  --set "model.head={plugin: retrieval}" --set model.fusion=late

if command -v mpirun >/dev/null && ! "$MPSL" run fusion.yaml --db probe.db --set transport.mode=mpi --set train.epochs=1 2>&1 | grep -q "built without MPI"; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
  MPIRUN=(mpirun --oversubscribe --bind-to none)
  [ -z "${ASAN_OPTIONS:-}" ] || MPIRUN+=(-x "ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0")
  for s in "strategy.head_on_client=false" "strategy.head_on_client=true"; do
    expect_ok "$s in one process" "$MPSL" run fusion.yaml --db mpi.db --set $s
    expect_ok "$s under mpirun -n 3" "${MPIRUN[@]}" -n 3 "$MPSL" run fusion.yaml --db mpi.db --set $s
    last=$(sql mpi.db "select max(id) from runs")
    au() { sql mpi.db "select value from epoch_metrics where run_id=$1 and name like 'audit_%' order by epoch, name"; }
    check "$s: audit figures agree under MPI" same_numbers "$(au $((last - 1)))" "$(au $last)" 1e-6
    check "$s: the same audit metrics recorded" [ "$(au $last | wc -l)" = "$(au $((last - 1)) | wc -l)" ]
  done
else
  echo "note: mpirun or MPI support missing; the MPI comparison is skipped" >&2
fi

finish
