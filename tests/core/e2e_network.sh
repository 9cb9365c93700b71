#!/usr/bin/env bash
# e2e_network.sh: the client and link model (`network:`) and the simulated time it records.
# - FedAvg (one round): sim_epoch_seconds equals a hand computation from the run's recorded
#   FLOPs, bytes and messages and the link model: the slowest client's compute + transfer;
#   each client's sim_compute_seconds and sim_transfer_seconds too;
# - MPSL with one client: the sum over its steps of the client's and the server's time;
# - the model changes no other figure, byte or FLOP (bit for bit against the run without it,
#   and with an unlimited network);
# - log-normal links: the same simulated time in one process and under mpirun -n 3;
# - a table file gives each client its own link; a bad table or key is refused by position;
# - mpsl compare --target and mpsl report show the simulated time to the target (the summed
#   sim_epoch_seconds up to the epoch that reaches it), empty for runs without the model;
# - strategy.deadline: exactly the clients whose simulated time for the slot exceeds it miss
#   it (FedAvg rounds, MPSL steps), the same in one process and under MPI; partial_work cuts
#   a slow client's round to the local steps that fit, its simulated time within the deadline.
source "$(dirname "$0")/lib.sh"

cat > net.yaml <<'YAML'
name: net
seed: 3
data:
  dataset: {plugin: two_modalities, n_train: 600, n_test: 200}
  clients: 3
  partition: {scheme: dirichlet, alpha: 0.5, min_per_client: 50}
model:
  tokenizers:
    image: {plugin: image_patch, patch: 4, dim: 16}
    audio: {plugin: image_patch, patch: 4, dim: 16}
  encoder: {plugin: token_mlp, depth: 1, hidden: 32}
  head: {plugin: classifier, pool: mean}
strategy: {plugin: fedavg}
train:
  epochs: 2
  batch_size: 30
  optimizer: {name: adam, lr: 0.003}
YAML
# Client k's simulated compute and transfer seconds in epoch e of run r, by hand: FLOPs at
# GF GFLOP/s; bytes up at UP Mbit/s, down at DOWN Mbit/s; LAT ms per message either way.
GF=2 UP=8 DOWN=40 LAT=25
hand() { # DB RUN EPOCH CLIENT -> "compute transfer"
  sql "$1" "select (select coalesce(sum(flops), 0) from compute where run_id=$2 and epoch=$3
                      and party='client' and client=$4) / ($GF * 1e9),
                   (select coalesce(sum(case direction when 'up' then bytes / ($UP * 1e6 / 8.0)
                                                      else bytes / ($DOWN * 1e6 / 8.0) end)
                                    + sum(messages) * $LAT / 1000.0, 0)
                      from comm where run_id=$2 and epoch=$3 and client=$4)"
}
net=(--set "network={model: constant, client_gflops: $GF, server_gflops: 50, uplink_mbps: $UP,
        downlink_mbps: $DOWN, latency_ms: $LAT}")

# --- FedAvg: the slowest client of each round
expect_ok "fedavg without the network model" "$MPSL" run net.yaml --db fed.db --quiet
off=$(last_run fed.db)
expect_ok "fedavg with the network model" "$MPSL" run net.yaml --db fed.db --quiet "${net[@]}"
on=$(last_run fed.db)
check "fedavg: the network model changes no figure, byte or FLOP" \
  [ "$(all_figures fed.db "$off")" = "$(all_figures fed.db "$on")" ]
check "fedavg: no simulated time without the model" \
  [ "$(sql fed.db "select count(*) from epoch_metrics where run_id=$off and name like 'sim_%'")" = 0 ]
for e in 0 1; do
  slowest=0
  for k in 0 1 2; do
    read -r c x <<<"$(hand fed.db "$on" $e $k | tr '|' ' ')"
    check "fedavg epoch $e client $k: sim_compute_seconds is FLOPs / speed ($c)" same_numbers \
      "$c" "$(sql fed.db "select value from client_metrics where run_id=$on and epoch=$e and client=$k and name='sim_compute_seconds'")" 1e-9
    check "fedavg epoch $e client $k: sim_transfer_seconds is bytes / bandwidth + latency ($x)" same_numbers \
      "$x" "$(sql fed.db "select value from client_metrics where run_id=$on and epoch=$e and client=$k and name='sim_transfer_seconds'")" 1e-9
    slowest=$(awk -v a="$slowest" -v b="$(awk -v c="$c" -v x="$x" 'BEGIN { printf "%.17g", c + x }')" \
      'BEGIN { printf "%.17g", (b > a ? b : a) }')
  done
  check "fedavg epoch $e: sim_epoch_seconds is the slowest client's ($slowest)" same_numbers "$slowest" \
    "$(sql fed.db "select value from epoch_metrics where run_id=$on and epoch=$e and name='sim_epoch_seconds'")" 1e-9
done

# --- MPSL, one client: every step waits for it and for the server
expect_ok "mpsl, one client, with the network model" "$MPSL" run net.yaml --db one.db --quiet \
  "${net[@]}" --set strategy.plugin=mpsl --set data.clients=1 --set "data.partition={scheme: iid}"
one=$(last_run one.db)
for e in 0 1; do
  read -r c x <<<"$(hand one.db "$one" $e 0 | tr '|' ' ')"
  server=$(sql one.db "select sum(flops) / 50e9 from compute where run_id=$one and epoch=$e and party='server'")
  want=$(awk -v c="$c" -v x="$x" -v s="$server" 'BEGIN { printf "%.17g", c + x + s }')
  check "mpsl one client, epoch $e: sim_epoch_seconds = client compute + transfer + server compute ($want)" \
    same_numbers "$want" "$(sql one.db "select value from epoch_metrics where run_id=$one and epoch=$e and name='sim_epoch_seconds'")" 1e-9
  check "mpsl one client, epoch $e: sim_server_seconds is its FLOPs at 50 GFLOP/s" same_numbers "$server" \
    "$(sql one.db "select value from epoch_metrics where run_id=$one and epoch=$e and name='sim_server_seconds'")" 1e-9
done

# --- MPSL, three clients: an unlimited network and the model off record the same figures;
# the simulated epoch is at least the slowest client's total and at most all clients' total
expect_ok "mpsl without the model" "$MPSL" run net.yaml --db mpsl.db --quiet --set strategy.plugin=mpsl
a=$(last_run mpsl.db)
expect_ok "mpsl with an unlimited network" "$MPSL" run net.yaml --db mpsl.db --quiet --set strategy.plugin=mpsl \
  --set "network={uplink_mbps: 0, downlink_mbps: 0, latency_ms: 0}"
b=$(last_run mpsl.db)
check "mpsl: an unlimited network changes no figure, byte or FLOP" [ "$(all_figures mpsl.db "$a")" = "$(all_figures mpsl.db "$b")" ]
check "mpsl: an unlimited network moves data in no time" \
  [ "$(sql mpsl.db "select max(value) from client_metrics where run_id=$b and name='sim_transfer_seconds'")" = 0.0 ]
expect_ok "mpsl with the network model" "$MPSL" run net.yaml --db mpsl.db --quiet --set strategy.plugin=mpsl "${net[@]}"
c=$(last_run mpsl.db)
check "mpsl: the network model changes no figure, byte or FLOP" [ "$(all_figures mpsl.db "$a")" = "$(all_figures mpsl.db "$c")" ]
check "mpsl: slowest client + server <= simulated epoch <= all clients + server" \
  [ "$(sql mpsl.db "select count(*) from epoch_metrics m where run_id=$c and name='sim_epoch_seconds' and
        value >= (select max(x.value + y.value) from client_metrics x join client_metrics y on y.run_id=x.run_id
                  and y.epoch=x.epoch and y.client=x.client and y.name='sim_transfer_seconds'
                  where x.run_id=$c and x.epoch=m.epoch and x.name='sim_compute_seconds') - 1e-12 and
        value <= (select sum(value) from client_metrics where run_id=$c and epoch=m.epoch and name like 'sim_%')
                 + (select value from epoch_metrics where run_id=$c and epoch=m.epoch and name='sim_server_seconds') + 1e-12")" = 2 ]

# --- time to target under the model: compare and report
first=$(sql fed.db "select min(epoch) from epoch_metrics where run_id=$on and name='test_acc' and value >= 0.3")
want=$(sql fed.db "select sum(value) from epoch_metrics where run_id=$on and name='sim_epoch_seconds' and epoch <= $first")
expect_ok "compare --target" "$MPSL" compare "$off" "$on" --db fed.db --target 0.3 --format json
got=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r[1]["sim_seconds_to_target"], r[0]["sim_seconds_to_target"])' "$WORK/out")
check "compare: sim_seconds_to_target is the summed sim_epoch_seconds to the target epoch ($want)" \
  same_numbers "$want" "${got%% *}" 1e-12
check "compare: no simulated time for the run without the model" [ "${got##* }" = None ]
expect_ok "report --target" "$MPSL" report "$off" "$on" --db fed.db --target 0.3 -o report.html
check "report: the time-to-target table has the simulated time" grep -q "simulated time (network model)" report.html
expect_ok "plot --x sim" "$MPSL" plot test_acc "$on" --db fed.db --x sim -o sim.svg
check "plot --x sim: the axis says what it is" grep -q "simulated wall time" sim.svg

# --- a table: each client its own link; client 1 alone is slow
cat > links.csv <<'CSV'
client,speed,uplink_mbps,downlink_mbps,latency_ms
0,1,100,100,1
1,0.5,1,2,80
2,2,100,100,1
CSV
expect_ok "fedavg with a link table" "$MPSL" run net.yaml --db table.db --quiet \
  --set "network={model: table, table: links.csv}"
t=$(last_run table.db)
check "table: client 1's transfer is the slowest" [ "$(sql table.db "select client from client_metrics where run_id=$t and epoch=0 and name='sim_transfer_seconds' order by value desc limit 1")" = 1 ]
check "table: client 1 sets the round's time" same_numbers \
  "$(sql table.db "select sum(value) from client_metrics where run_id=$t and epoch=0 and client=1 and name like 'sim_%'")" \
  "$(sql table.db "select value from epoch_metrics where run_id=$t and epoch=0 and name='sim_epoch_seconds'")" 1e-12
printf 'client,speed,uplink_mbps,downlink_mbps,latency_ms\n0,1,1,1,1\n1,1,x,1,1\n' > bad.csv
expect_refusal "a malformed table row" "bad.csv:3" "five numbers" -- "$MPSL" run net.yaml --db bad.db \
  --set "network={model: table, table: bad.csv}"
printf 'client,speed,uplink_mbps,downlink_mbps,latency_ms\n0,1,1,1,1\n1,1,1,1,1\n' > short.csv
expect_refusal "a table without every client" "no row for client 2" -- "$MPSL" run net.yaml --db bad.db \
  --set "network={model: table, table: short.csv}"
expect_refusal "model: table without a table" "network.table is needed with model: table" -- \
  "$MPSL" run net.yaml --db bad.db --set "network={model: table}"
expect_refusal "an unknown network key" "network" "uplink" -- "$MPSL" run net.yaml --db bad.db \
  --set "network={uplink: 3}"

# --- strategy.deadline
cat > slow.csv <<'CSV'
client,speed,uplink_mbps,downlink_mbps,latency_ms
0,1,100,100,1
1,0.001,1,2,80
2,2,100,100,1
CSV
slow=(--set "network={model: table, table: slow.csv}")
expect_ok "fedavg, slow client 1, no deadline" "$MPSL" run net.yaml --db dl.db --quiet "${slow[@]}"
free=$(last_run dl.db)
# each client's simulated round (the same every round: whole passes)
round_time() { sql dl.db "select sum(value) from client_metrics where run_id=$free and epoch=0 and client=$1 and name like 'sim_%'"; }
t0=$(round_time 0) t1=$(round_time 1) t2=$(round_time 2)
deadline=$(awk -v a="$t1" -v b="$t0" -v c="$t2" 'BEGIN { m = b > c ? b : c; printf "%.6g", (a + m) / 2 }')
expect_ok "fedavg with deadline $deadline" "$MPSL" run net.yaml --db dl.db --quiet "${slow[@]}" \
  --set strategy.deadline="$deadline"
late=$(last_run dl.db)
check "fedavg deadline: exactly client 1 (${t1}s > ${deadline}s) misses every round" \
  [ "$(sql dl.db "select group_concat(client || ':' || value) from client_metrics where run_id=$late and name='missed_deadline' and epoch=1 order by client")" = "0:0.0,1:1.0,2:0.0" ]
check "fedavg deadline: the round then waits for the slowest of the others" same_numbers \
  "$(awk -v b="$t0" -v c="$t2" 'BEGIN { printf "%.17g", (b > c ? b : c) }')" \
  "$(sql dl.db "select value from epoch_metrics where run_id=$late and epoch=1 and name='sim_epoch_seconds'")" 1e-9
expect_ok "fedavg with deadline and partial_work" "$MPSL" run net.yaml --db dl.db --quiet "${slow[@]}" \
  --set strategy.deadline="$deadline" --set strategy.partial_work=true
part=$(last_run dl.db)
check "partial_work: client 1's round was cut, the others' not" \
  [ "$(sql dl.db "select group_concat(client || ':' || value) from client_metrics where run_id=$part and epoch=0 and name='partial_round' order by client")" = "0:0.0,1:1.0,2:0.0" ]
check "partial_work: client 1 trained part of its data, within the deadline" \
  [ "$(sql dl.db "select s.value > 0 and s.value < d.n_samples and t.v <= $deadline from client_metrics s
        join client_data d on d.run_id=s.run_id and d.client=s.client
        join (select sum(value) v from client_metrics where run_id=$part and epoch=0 and client=1 and name like 'sim_%') t
        where s.run_id=$part and s.epoch=0 and s.client=1 and s.name='samples'")" = 1 ]
check "partial_work: one more local step of 10 samples would not have fit" \
  [ "$(sql dl.db "select t.v + c.value / (s.value / 10) > $deadline from client_metrics s
        join client_metrics c on c.run_id=s.run_id and c.epoch=s.epoch and c.client=s.client and c.name='sim_compute_seconds'
        join (select sum(value) v from client_metrics where run_id=$part and epoch=0 and client=1 and name like 'sim_%') t
        where s.run_id=$part and s.epoch=0 and s.client=1 and s.name='samples'")" = 1 ]
expect_refusal "a deadline without a network model" "strategy.deadline needs a network model" -- \
  "$MPSL" run net.yaml --db bad.db --set strategy.deadline=1
expect_refusal "partial_work without a deadline" "strategy.partial_work needs a strategy.deadline" -- \
  "$MPSL" run net.yaml --db bad.db "${slow[@]}" --set strategy.partial_work=true
# MPSL: a step's deadline between client 1's step time and the others'
expect_ok "mpsl, slow client 1, no deadline" "$MPSL" run net.yaml --db dlm.db --quiet "${slow[@]}" \
  --set strategy.plugin=mpsl --set train.epochs=1
expect_ok "mpsl with a step deadline of 0.05 s" "$MPSL" run net.yaml --db dlm.db --quiet "${slow[@]}" \
  --set strategy.plugin=mpsl --set train.epochs=1 --set strategy.deadline=0.05
m=$(last_run dlm.db)
check "mpsl deadline: client 1 misses every step of its pass, the others none" \
  [ "$(sql dlm.db "select group_concat(c.client || ':' || (c.value = (d.n_samples + 9) / 10), ',') from client_metrics c
        join client_data d on d.run_id=c.run_id and d.client=c.client
        where c.run_id=$m and c.name='missed_deadline' order by c.client")" = "0:0,1:1,2:0" ]
check "mpsl deadline: client 1's only simulated time is its tokenizer upload" \
  [ "$(sql dlm.db "select value from client_metrics where run_id=$m and client=1 and name='sim_compute_seconds'")" = 0.0 ]

# --- log-normal links: the same simulated time in one process and under MPI
if command -v mpirun >/dev/null && ! "$MPSL" run net.yaml --db probe.db --set transport.mode=mpi \
     --set train.epochs=1 2>&1 | grep -q "built without MPI"; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
  MPIRUN=(mpirun --oversubscribe --bind-to none)
  if [ -n "${ASAN_OPTIONS:-}" ]; then MPIRUN+=(-x "ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0"); fi
  for s in mpsl fedavg; do
    expect_ok "$s log-normal links in one process" "$MPSL" run net.yaml --db ln.db --quiet \
      --set strategy.plugin=$s --set "network={model: lognormal, sigma: 0.8}"
    x=$(last_run ln.db)
    expect_ok "$s log-normal links under mpirun -n 3" "${MPIRUN[@]}" -n 3 "$MPSL" run net.yaml --db ln.db \
      --quiet --set strategy.plugin=$s --set "network={model: lognormal, sigma: 0.8}"
    y=$(last_run ln.db)
    check "$s: the same simulated times in one process and under MPI" same_numbers \
      "$(sql ln.db "select value from epoch_metrics where run_id=$x and name like 'sim_%' order by epoch, name")
       $(sql ln.db "select value from client_metrics where run_id=$x and name like 'sim_%' order by epoch, client, name")" \
      "$(sql ln.db "select value from epoch_metrics where run_id=$y and name like 'sim_%' order by epoch, name")
       $(sql ln.db "select value from client_metrics where run_id=$y and name like 'sim_%' order by epoch, client, name")" 1e-9
  done
  for s in mpsl fedavg; do
    args=(--set strategy.plugin=$s "${slow[@]}" --set strategy.deadline=0.05)
    [ $s = fedavg ] && args=(--set strategy.plugin=$s "${slow[@]}" --set strategy.deadline="$deadline" --set strategy.partial_work=true)
    expect_ok "$s with a deadline in one process" "$MPSL" run net.yaml --db dmpi.db --quiet "${args[@]}"
    x=$(last_run dmpi.db)
    expect_ok "$s with a deadline under mpirun -n 3" "${MPIRUN[@]}" -n 3 "$MPSL" run net.yaml --db dmpi.db --quiet "${args[@]}"
    y=$(last_run dmpi.db)
    q="select epoch || client || name || value from client_metrics where name in ('missed_deadline', 'participated', 'partial_round', 'samples') and run_id="
    check "$s deadline: the same clients miss the same slots in one process and under MPI" \
      [ "$(sql dmpi.db "$q$x order by 1")" = "$(sql dmpi.db "$q$y order by 1")" ]
  done
else
  echo "note: no MPI, the MPI part is skipped"
fi
finish
