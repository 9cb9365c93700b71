#!/usr/bin/env bash
# e2e_estimate.sh: `mpsl estimate` predicts what a run then records. For MPSL (one_pass and
# cycle epochs; the head on the server or, U-shaped, on the clients), FedAvg (two local epochs, its own batch size), FedProx and centralized
# training on a tiny non-IID Fashion-MNIST split, the estimate's bytes and messages per
# client, direction and kind equal the comm rows of a real one-epoch run exactly, and its
# FLOPs per party, client and pass equal the compute rows (relative 1e-9); then the usage,
# the formats, sweeps, --all-strategies and the break-even.
source "$(dirname "$0")/lib.sh"

EXP="$MPSL_SOURCE/experiments/fmnist_fedavg.yaml"
TINY=(--set data.dataset.train_limit=1200 --set data.dataset.test_limit=200 --set train.epochs=1
      --set data.clients=4 --set train.batch_size=50)

# compare NAME SETTINGS...: estimate, then run, the same experiment; compare the figures.
compare() {
  local name=$1; shift
  local db="$name.db"
  if ! "$MPSL" estimate "$EXP" "${TINY[@]}" "$@" --per-client --format csv --table comm \
      >"$name.est_comm" 2>"$WORK/err"; then
    fail "$name: estimate failed"; sed 's/^/    /' "$WORK/err" >&2; return
  fi
  "$MPSL" estimate "$EXP" "${TINY[@]}" "$@" --per-client --format csv --table compute \
    >"$name.est_compute" 2>/dev/null
  expect_ok "$name: run" "$MPSL" run "$EXP" "${TINY[@]}" "$@" --db "$db" -q
  # bytes and messages: exactly, row for row (the estimate lists non-zero counters, as comm)
  tail -n +2 "$name.est_comm" | cut -d, -f2- | sort >"$name.a"
  sql "$db" "select client || ',' || direction || ',' || kind || ',' || bytes || ',' || messages
             from comm where run_id = 1 and epoch = 0" | sort >"$name.b"
  if [ "$name" = centralized ]; then
    check "centralized: no comm rows, none estimated" [ ! -s "$name.b" -a ! -s "$name.a" ]
  else
    check "$name: comm rows exist" [ -s "$name.b" ]
  fi
  if cmp -s "$name.a" "$name.b"; then ok; else
    fail "$name: estimated bytes differ from the run's"; diff "$name.a" "$name.b" | head >&2; fi
  # FLOPs: every (party, client, pass) row within 1e-9 relative (FLOP_TOL: the text
  # tokenizer's work depends on the captions' lengths, and the estimate tokenizes other
  # samples than the run; the server's rows stay within 1e-9 whatever FLOP_TOL says)
  tail -n +2 "$name.est_compute" | cut -d, -f2- | sort >"$name.c"
  sql "$db" "select party || ',' || client || ',' || pass || ',' || printf('%.17g', flops)
             from compute where run_id = 1 and epoch = 0" | sort >"$name.d"
  if join -t, -j1 <(sed 's/,/:/; s/,/:/' "$name.c" | sort) <(sed 's/,/:/; s/,/:/' "$name.d" | sort) |
      awk -F, -v want="$(wc -l <"$name.d")" -v tol="${FLOP_TOL:-1e-9}" '
        { d = $2 - $3; if (d < 0) d = -d; s = $3 < 0 ? -$3 : $3; if (s < 1) s = 1
          if (d > ($1 ~ /^server/ ? 1e-9 : tol) * s) bad++; n++ }
        END { exit !(n == want && n > 0 && !bad) }' &&
      [ "$(wc -l <"$name.c")" = "$(wc -l <"$name.d")" ]; then ok; else
    fail "$name: estimated FLOPs differ from the run's"; paste "$name.c" "$name.d" | head >&2; fi
}

compare mpsl --set 'strategy={plugin: mpsl}'
compare mpsl_cycle --set 'strategy={plugin: mpsl, epoch: cycle}'
compare mpsl_frozen --set 'strategy={plugin: mpsl, freeze_tokenizers: true, client_batch: 7}'
compare mpsl_ushaped --set 'strategy={plugin: mpsl, head_on_client: true}'
compare mpsl_ushaped_frozen --set 'strategy={plugin: mpsl, head_on_client: true, freeze_tokenizers: true, epoch: cycle}'
compare fedavg --set 'strategy={plugin: fedavg, local_epochs: 2, batch_size: 16}'
compare fedprox --set 'strategy={plugin: fedprox, mu: 0.1}'
compare centralized --set 'strategy={plugin: centralized}'

# Retrieval, the loss on the clients (embeddings down, their gradients and a loss value up)
# and on the server (retrieval_loss: server: tokens and cut-layer gradients only).
cat > retrieval.yaml <<'YAML'
name: est-retrieval
seed: 5
data:
  dataset: {plugin: two_views_retrieval, n_train: 302, n_test: 50}
  clients: 3
  partition: {scheme: iid}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 32}
    text: {plugin: text, vocab: bytes, pool_to_one: true, cls: false, max_tokens: 24, dim: 32}
  encoder: {plugin: vit, depth: 1, heads: 2, mlp_ratio: 2}
  head: {plugin: retrieval}
  fusion: late
strategy: {plugin: mpsl}
train: {epochs: 1, batch_size: 40, optimizer: {name: adam, lr: 0.001}}
YAML
saved_exp=$EXP saved_tiny=("${TINY[@]}")
EXP=retrieval.yaml TINY=(--set train.epochs=1) FLOP_TOL=0.01
compare retrieval_client_loss --set 'strategy={plugin: mpsl}'
compare retrieval_server_loss --set 'strategy={plugin: mpsl, retrieval_loss: server}'
EXP=$saved_exp TINY=("${saved_tiny[@]}") FLOP_TOL=1e-9
check "server-side loss: no logits, logit_grads or scalars rows" \
  [ "$(sql retrieval_server_loss.db "select count(*) from comm where kind in ('logits','logit_grads','scalars')")" = 0 ]

# The summary: parameters per party and the FedAvg side of the break-even by formula.
expect_ok "summary as JSON" "$MPSL" estimate "$EXP" "${TINY[@]}" --all-strategies --format json
check "JSON has the three tables" grep -q '"summary": \[.*"comm": \[.*"compute": \[' <(tr -d '\n' <"$WORK/out")
"$MPSL" estimate "$EXP" "${TINY[@]}" --set 'strategy={plugin: fedavg}' --format csv \
  --table summary >sum.csv 2>/dev/null
col() { awk -F, -v name="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i }
                               NR == 2 { print $c }' sum.csv; }
check "FedAvg client parameters 21578" [ "$(col client_trainable)" = 21578 ]
check "FedAvg bytes per round = 2 x 4 x 21578" [ "$(col fedavg_bytes_per_round)" = 172624 ]
check "mean bytes up = 4 x 21578" [ "$(col client_bytes_up)" = 86312 ]
# Break-even in samples per client: MPSL's bytes for n samples (17 tokens of 64 floats up and
# their gradients down, 10 logits down and their gradients up, 8 bytes of loss a step of 13,
# the 4352-float tokenizer upload) stay below 172624 up to n = 17.
n=$(col breakeven_samples)
b() { echo $(( $1 * 17 * 64 * 8 + $1 * 10 * 8 + 8 * (($1 + 12) / 13) + 4352 * 4 )); }
check "break-even samples $n: below at n" [ "$(b "$n")" -lt 172624 ]
check "break-even samples $n: not below at n+1" [ "$(b $((n + 1)))" -ge 172624 ]

# A sweep estimates every point, named by its values.
cat > sweep.yaml <<YAML
name: sw
include: [$EXP]
sweep:
  data.clients: [2, 3]
YAML
expect_ok "sweep" "$MPSL" estimate sweep.yaml "${TINY[@]/data.clients=4/train.epochs=1}" --format csv --table summary
check "two points" [ "$(grep -c '^data.clients=' "$WORK/out")" = 2 ]
expect_ok "table output" "$MPSL" estimate "$EXP" "${TINY[@]}"
check "text names the break-even" grep -q 'mpsl_below_fedavg' "$WORK/out"

# Refusals: usage (2), errors (1) naming what was wrong.
"$MPSL" estimate >/dev/null 2>&1; check "no file: exit 2" [ $? = 2 ]
"$MPSL" estimate "$EXP" --format xml >/dev/null 2>&1; check "bad format: exit 2" [ $? = 2 ]
"$MPSL" estimate "$EXP" --table nope >/dev/null 2>&1; check "bad table: exit 2" [ $? = 2 ]
expect_refusal "bad key" "train.epoch" -- "$MPSL" estimate "$EXP" --set train.epoch=2
expect_refusal "a strategy whose protocol it does not know" "deadlock_strategy" \
  "estimate knows the messages of mpsl, fedavg, fedprox and centralized" -- \
  "$MPSL" estimate "$EXP" "${TINY[@]}" --set 'strategy={plugin: deadlock_strategy}'
finish
