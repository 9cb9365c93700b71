#!/usr/bin/env bash
# e2e_run.sh: the run path end to end on real data: FedAvg and centralized runs, accuracy
# well above chance, listing, show, compare in every format, --from-run reproducing a run
# exactly, and plugins named by a path relative to the experiment file.
source "$(dirname "$0")/lib.sh"
EXP="$MPSL_SOURCE/experiments"

expect_ok "fedavg" "$MPSL" run "$EXP/fmnist_fedavg.yaml" --db r.db "${QUICK[@]}"
expect_ok "centralized" "$MPSL" run "$EXP/fmnist_centralized.yaml" --db r.db "${QUICK[@]}"
check "two finished runs" [ "$(sql r.db "select count(*) from runs where status='finished'")" = 2 ]
check "run 1 is fedavg" [ "$(sql r.db "select method from runs where id=1")" = fedavg ]
check "clients' data stored" [ "$(sql r.db "select count(*) from client_data where run_id=1")" = 10 ]
check "client partition sums to the slice" \
  [ "$(sql r.db "select sum(n_samples) from client_data where run_id=1")" = 3000 ]
check "parameter bytes counted both ways" \
  [ "$(sql r.db "select count(distinct direction) from comm where run_id=1 and kind='parameters'")" = 2 ]
check "client FLOPs counted for fedavg" \
  [ "$(sql r.db "select sum(flops) > 0 from compute where run_id=1 and party='client'")" = 1 ]

# FedAvg's bytes are exactly the trainable parameters, 4 bytes each, once each way per round.
params=$(sql r.db "select bytes from comm where run_id=1 and client=0 and direction='down'")
check "fedavg payload is 4 bytes per trainable parameter" [ $((params % 4)) = 0 ] 
check "every client got the same model size" \
  [ "$(sql r.db "select count(distinct bytes) from comm where run_id=1 and direction='down'")" = 1 ]

# Listing, showing and comparing.
expect_ok "runs" "$MPSL" runs --db r.db
check "runs lists both" grep -q fmnist_centralized "$WORK/out"
expect_ok "show" "$MPSL" show 1 --db r.db
check "show has the config" grep -q "fmnist_fedavg" "$WORK/out"
for fmt in table csv json; do
  expect_ok "compare $fmt" "$MPSL" compare 1 2 --db r.db --format "$fmt"
  check "compare $fmt names both methods" grep -q centralized "$WORK/out"
  check "compare $fmt names fedavg" grep -q fedavg "$WORK/out"
done
expect_refusal "show of a missing run" "no run 99" -- "$MPSL" show 99 --db r.db

# --from-run repeats a run from the database alone, to the same numbers.
expect_ok "from-run" "$MPSL" run --from-run 1 --db r.db
check "same resolved config" [ "$(sql r.db "select count(distinct config_yaml) from runs where id in (1,3)")" = 1 ]
a=$(sql r.db "select value from epoch_metrics where run_id=1 and name='test_acc'")
b=$(sql r.db "select value from epoch_metrics where run_id=3 and name='test_acc'")
check "from-run reproduces test_acc ($a vs $b)" [ -n "$a" ] && [ "$a" = "$b" ]

# Accuracy on the real test set, full data, two epochs: well above chance (0.10).
expect_ok "full centralized" "$MPSL" run "$EXP/fmnist_centralized.yaml" --db full.db --set train.epochs=2
acc=$(sql full.db "select value from epoch_metrics where run_id=1 and epoch=1 and name='test_acc'")
check "test accuracy $acc > 0.70" awk -v a="$acc" 'BEGIN { exit !(a > 0.70) }'
echo "full Fashion-MNIST centralized, 2 epochs: test_acc $acc" >&2

# A plugin given as a path relative to the experiment file.
mkdir -p exp/my && cp "$MPSL_PLUGIN_DIR/aggregation/fedavg.so" exp/my/fedavg_copy.so
cp "$EXP/fmnist_fedavg.yaml" exp/q.yaml
sed -i 's|plugin: fedavg|plugin: my/fedavg_copy.so|' exp/q.yaml
MPSL_CONFIG_PATH="$MPSL_SOURCE/configs" expect_ok "relative plugin path" \
  "$MPSL" run exp/q.yaml --db rel.db "${QUICK[@]}"
check "the copy was used" grep -q "my/fedavg_copy.so" <(sql rel.db "select path from run_plugins")

# Optimizer groups: freezing the encoder removes exactly its parameters from FedAvg's
# messages (token_mlp depth 1, D 64, hidden 128: 64*128+128 + 128*64+64 = 16576 floats).
expect_ok "frozen encoder group" "$MPSL" run "$EXP/fmnist_fedavg.yaml" --db groups.db "${QUICK[@]}" \
  --set 'train.optimizer.groups=[{match: "blocks.*", frozen: true}, {match: "head.*", lr: 0.01}]'
full=$(sql r.db "select bytes from comm where run_id=1 and client=0 and direction='down' and kind='parameters'")
frozen=$(sql groups.db "select bytes from comm where run_id=1 and client=0 and direction='down' and kind='parameters'")
check "frozen encoder saves exactly its bytes ($full - $frozen = 66304)" [ $((full - frozen)) = 66304 ]
expect_refusal "group without match" "train.optimizer.groups[0]" "match" -- \
  "$MPSL" run "$EXP/fmnist_fedavg.yaml" --db groups.db --set 'train.optimizer.groups=[{lr: 0.1}]'

# Weights: save the final model, load it into a run that does not train (lr 0): the same
# test accuracy. A strict load of a file missing parameters is refused before the run.
expect_ok "save weights" "$MPSL" run "$EXP/fmnist_centralized.yaml" --db w.db "${QUICK[@]}" \
  --set output.save_weights="$WORK/model.safetensors"
check "weights file written" [ -s "$WORK/model.safetensors" ]
expect_ok "load weights" "$MPSL" run "$EXP/fmnist_centralized.yaml" --db w.db "${QUICK[@]}" \
  --set "model.weights={path: $WORK/model.safetensors}" --set train.optimizer.lr=0
a=$(sql w.db "select value from epoch_metrics where run_id=1 and name='test_acc'")
b=$(sql w.db "select value from epoch_metrics where run_id=2 and name='test_acc'")
check "loaded model evaluates the same ($a = $b)" [ -n "$a" ] && [ "$a" = "$b" ]
expect_refusal "strict load of a smaller model" "model.weights" "not in the file" "blocks.1.mlp.fc1.weight" -- \
  "$MPSL" run "$EXP/fmnist_centralized.yaml" --db w.db "${QUICK[@]}" \
  --set "model.weights={path: $WORK/model.safetensors}" --set model.encoder.depth=2
check "refused load left no run" [ "$(sql w.db 'select count(*) from runs')" = 2 ]

# mpsl plugins lists every built plugin with its kind.
MPSL_PLUGIN_PATH="$MPSL_PLUGIN_DIR" expect_ok "plugins" "$MPSL" plugins
for p in "fashion_mnist *dataset" "image_patch *tokenizer" "token_mlp *encoder" \
         "classifier *head" "fedavg *aggregation" "centralized *aggregation"; do
  check "plugins lists $p" grep -Eq "^$p" "$WORK/out"
done
# Transparent huge pages for the heap (core/cli/huge_pages.c): where the kernel gives them on
# request, the command runs with glibc's malloc tunable set; MPSL_HUGEPAGES=0 keeps it off, and
# a GLIBC_TUNABLES the user set is passed through untouched.
if grep -qF '[madvise]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
  MPSL_LOG=debug "$MPSL" --version >/dev/null 2>"$WORK/thp"
  check "huge pages requested for the heap" grep -qF 'GLIBC_TUNABLES=glibc.malloc.hugetlb=1' "$WORK/thp"
fi
MPSL_HUGEPAGES=0 MPSL_LOG=debug "$MPSL" --version >/dev/null 2>"$WORK/thp"
check "MPSL_HUGEPAGES=0 leaves the heap alone" test -z "$(grep -F hugetlb "$WORK/thp")"
GLIBC_TUNABLES=glibc.malloc.hugetlb=0 MPSL_LOG=debug "$MPSL" --version >/dev/null 2>"$WORK/thp"
check "the user's own tunable is kept" grep -qF 'GLIBC_TUNABLES=glibc.malloc.hugetlb=0' "$WORK/thp"

finish
