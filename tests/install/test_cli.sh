#!/usr/bin/env bash
# test_cli.sh: the `mpsl` command's Unix habits: `mpsl help VERB`, -V, global --db and -q
# before the verb, MPSL_DB as the default database, did-you-mean for verbs and plugin names,
# and `mpsl plugins --names`.
source "$MPSL_SOURCE/tests/core/lib.sh"
EXP="$MPSL_SOURCE/experiments"

# status CMD...: the exit status of CMD (its output in $WORK/out and $WORK/err).
status() { "$@" >"$WORK/out" 2>"$WORK/err"; echo $?; }
has() { grep -qF -- "$1" "$WORK/$2"; }

# help, version.
verbs=$("$MPSL" --help | awk '/^verbs:/ { v = 1; next } v && /^$/ { exit } v { print $1 }')
check "mpsl --help lists verbs" [ "$(echo "$verbs" | wc -l)" -ge 14 ]
for v in $verbs; do
  [ "$v" = help ] || [ "$v" = version ] && continue
  check "mpsl help $v exits 0" [ "$(status "$MPSL" help "$v")" = 0 ]
  cp "$WORK/out" "$WORK/help.out"
  "$MPSL" "$v" --help >"$WORK/verb.out" 2>&1
  check "mpsl help $v is mpsl $v --help" cmp -s "$WORK/help.out" "$WORK/verb.out"
  check "mpsl help $v is a usage" grep -q "^usage: mpsl $v" "$WORK/help.out"
done
check "mpsl help exits 0" [ "$(status "$MPSL" help)" = 0 ]
check "mpsl help prints the verbs on stdout" has "new-plugin" out
check "mpsl help version exits 0" [ "$(status "$MPSL" help version)" = 0 ]
check "mpsl help bogus exits 2" [ "$(status "$MPSL" help bogus)" = 2 ]
check "mpsl help bogus names it" has "mpsl help: unknown verb 'bogus'" err
check "mpsl help rnu exits 2" [ "$(status "$MPSL" help rnu)" = 2 ]
check "mpsl help rnu suggests run" has "did you mean 'run'?" err
check "mpsl help with two verbs exits 2" [ "$(status "$MPSL" help run show)" = 2 ]
version=$("$MPSL" version)
check "mpsl version" grep -qE '^mpsl [0-9]+\.[0-9]+\.[0-9]+ \(' <<<"$version"
check "mpsl -V is mpsl version" [ "$("$MPSL" -V)" = "$version" ]
check "mpsl --version is mpsl version" [ "$("$MPSL" --version)" = "$version" ]

# A mistyped verb.
check "mpsl rnu exits 2" [ "$(status "$MPSL" rnu x.yaml)" = 2 ]
check "mpsl rnu: did you mean" has "mpsl: unknown verb 'rnu'; did you mean 'run'?" err
check "mpsl cmopare exits 2" [ "$(status "$MPSL" cmopare 1 2)" = 2 ]
check "mpsl cmopare suggests compare" has "did you mean 'compare'?" err
check "mpsl zzzzzz exits 2" [ "$(status "$MPSL" zzzzzz)" = 2 ]
check "no suggestion for zzzzzz" not has "did you mean" err
check "the verbs are listed" has "expected one of: run resume" err
check "mpsl without a verb exits 2" [ "$(status "$MPSL")" = 2 ]

# Global options.
check "unknown global option exits 2" [ "$(status "$MPSL" --bogus runs)" = 2 ]
check "unknown global option is named" has "unknown global option '--bogus'" err
check "--db without a value exits 2" [ "$(status "$MPSL" --db)" = 2 ]
check "--db= without a value exits 2" [ "$(status "$MPSL" --db= runs)" = 2 ]
check "--db without a verb exits 2" [ "$(status "$MPSL" --db r.db)" = 2 ]
check "--db before a verb without --db exits 2" [ "$(status "$MPSL" --db r.db plugins)" = 2 ]
check "... and says where --db applies" has "--db does not apply to 'plugins'" err
check "-q before a verb without --quiet exits 2" [ "$(status "$MPSL" -q runs)" = 2 ]
check "... and says where it applies" has "--quiet does not apply to 'runs'" err

expect_ok "run with global --db and -q" "$MPSL" -q --db g.db run "$EXP/fmnist_centralized.yaml" "${QUICK[@]}"
check "global --db: the run went to g.db" [ "$(sql g.db "select count(*) from runs")" = 1 ]
check "global -q is the run's --quiet: no start line" not grep -q "^run 1:" "$WORK/err"
expect_ok "second run" "$MPSL" run "$EXP/fmnist_centralized.yaml" --db g.db "${QUICK[@]}" --set seed=7
for args in "runs" "show 1" "compare 1 2" "diff 1 2" "query select\ name\ from\ runs"; do
  eval "set -- $args"
  "$MPSL" "$@" --db g.db >"$WORK/want" 2>&1
  check "mpsl --db PATH $args" cmp -s "$WORK/want" <("$MPSL" --db g.db "$@" 2>&1)
  check "mpsl --db=PATH $args" cmp -s "$WORK/want" <("$MPSL" --db=g.db "$@" 2>&1)
  check "MPSL_DB=PATH mpsl $args" cmp -s "$WORK/want" <(MPSL_DB=g.db "$MPSL" "$@" 2>&1)
done
check "a --db after the verb wins over the global one" \
  cmp -s <("$MPSL" runs --db g.db) <("$MPSL" --db nowhere.db runs --db g.db)
expect_ok "global --db before the verb's --" "$MPSL" --db g.db plot test_acc 1 -o - -- 
check "the plot came out" grep -q "<svg" "$WORK/out"

# MPSL_DB: the command line wins; empty means unset.
check "--db wins over MPSL_DB" cmp -s <("$MPSL" runs --db g.db) <(MPSL_DB=nowhere.db "$MPSL" runs --db g.db)
check "MPSL_DB names the database read" [ "$(MPSL_DB=nowhere.db status "$MPSL" runs)" = 1 ]
check "... in the message" has "'nowhere.db'" err
check "global --db wins over MPSL_DB" [ "$(MPSL_DB=g.db status "$MPSL" --db other.db show 1)" = 1 ]
check "... in the message" has "'other.db'" err
check "an empty MPSL_DB is unset" [ "$(MPSL_DB='' status "$MPSL" runs)" = 1 ]
check "... so results.db is read" has "'results.db'" err
for args in "runs" "show 1" "compare 1 2" "diff 1 2" "report -o x.html" "plot test_acc 1 -o x.svg" \
            "query select\ 1" "resume 1"; do
  eval "set -- $args"
  check "MPSL_DB: mpsl $args fails on a missing env.db" [ "$(MPSL_DB=env.db status "$MPSL" "$@")" = 1 ]
  check "MPSL_DB: mpsl $args names env.db" has "env.db" err
done

# Did you mean, for plugin names of the kind the experiment slot wants.
expect_refusal "misspelt strategy" "no aggregation plugin named 'fedavgg'; did you mean 'fedavg'?" -- \
  "$MPSL" prepare "$EXP/fmnist_fedavg.yaml" --set strategy.plugin=fedavgg
expect_refusal "misspelt dataset" "did you mean 'fashion_mnist'?" -- \
  "$MPSL" prepare "$EXP/fmnist_fedavg.yaml" --set data.dataset.plugin=fashoin_mnist
expect_refusal "an encoder is not offered for a strategy" "no aggregation plugin named 'vitt' (" -- \
  "$MPSL" prepare "$EXP/fmnist_fedavg.yaml" --set strategy.plugin=vitt
expect_refusal "nothing near" "no aggregation plugin named 'zzzzzz' (searched" -- \
  "$MPSL" prepare "$EXP/fmnist_fedavg.yaml" --set strategy.plugin=zzzzzz

# mpsl plugins --names.
expect_ok "plugins --names" "$MPSL" plugins --names
check "--names has no header" not grep -q NAME "$WORK/out"
check "--names lists fedavg once" [ "$(grep -cx fedavg "$WORK/out")" = 1 ]
check "--names lists fashion_mnist" grep -qx fashion_mnist "$WORK/out"
expect_ok "plugins --names --kind" "$MPSL" plugins --names --kind aggregation
check "--kind aggregation has mpsl" grep -qx mpsl "$WORK/out"
check "--kind aggregation has no dataset" not grep -qx fashion_mnist "$WORK/out"
check "--names with --params exits 2" [ "$(status "$MPSL" plugins --names --params)" = 2 ]

finish
