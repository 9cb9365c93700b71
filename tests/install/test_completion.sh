#!/usr/bin/env bash
# test_completion.sh: scripts/completion/mpsl.bash, sourced in a plain bash (no
# bash-completion package), completes verbs, each verb's options, option values, plugin
# names, run ids and file names, asking the build tree's mpsl.
source "$MPSL_SOURCE/tests/core/lib.sh"
EXP="$MPSL_SOURCE/experiments"

# shellcheck source=../../scripts/completion/mpsl.bash
source "$MPSL_SOURCE/scripts/completion/mpsl.bash" || fail "the script does not source"
check "registered for mpsl" grep -q -- "-F _mpsl mpsl" <(complete -p mpsl)

# comp WORD...: what _mpsl offers for the command line WORD... (its last word is the one
# being completed; bash has split it at '=' as readline does), sorted, one a line.
comp() {
  COMP_WORDS=("$MPSL" "$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="${COMP_WORDS[*]}"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _mpsl
  printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort
}
# offers WORD... :: CANDIDATE...: every candidate is offered.
offers() {
  local words=()
  while [ "$1" != "::" ]; do words+=("$1"); shift; done
  shift
  local got c
  got=$(comp "${words[@]}")
  for c in "$@"; do
    if grep -qxF -- "$c" <<<"$got"; then ok; else
      fail "mpsl ${words[*]}<TAB> does not offer '$c' (offers: $(echo $got))"; fi
  done
}
# exactly WORD... :: CANDIDATE...: the candidates, no more, no fewer.
exactly() {
  local words=()
  while [ "$1" != "::" ]; do words+=("$1"); shift; done
  shift
  local got want
  got=$(comp "${words[@]}")
  want=$(printf '%s\n' "$@" | sed '/^$/d' | sort)
  if [ "$got" = "$want" ]; then ok; else
    fail "mpsl ${words[*]}<TAB> offers '$(echo $got)', expected '$(echo $want)'"; fi
}

# Verbs, also after global options; every verb of `mpsl --help`.
exactly "r" :: report resume run runs
exactly "co" :: compare convert
exactly "--db" "r.db" "sh" :: show
exactly "-q" "ru" :: run runs
exactly "--db" "=" "r.db" "pl" :: plot plugins
for v in $("$MPSL" --help | awk '/^verbs:/ { v = 1; next } v && /^$/ { exit } v { print $1 }'); do
  offers "" :: "$v"
done
offers "help" "" :: run new-plugin version
exactly "-" :: --db -q --quiet -h --help -V --version

# Each verb's options, from its own usage.
offers "compare" "--" :: --db --format --metric --help
offers "compare" "1" "2" "--f" :: --format
offers "run" "x.yaml" "--" :: --set --db --quiet --jobs --rerun --from-run
offers "diff" "1" "2" "--" :: --db --format --all
offers "run" "x.yaml" "-" :: -j -h --set
offers "report" "-" :: -o --db --status --method --dataset --name --tag --limit --metric --title
offers "plugins" "--" :: --params --names --kind
offers "fetch" "--" :: --dir --mirror --force --verify --quiet --list
exactly "runs" "--stat" :: --status

# Option values.
exactly "runs" "--format" "" :: table csv json
exactly "runs" "--format" "=" "c" :: csv
exactly "runs" "--status" "f" :: failed finished
exactly "plugins" "--kind" "" :: dataset tokenizer encoder head aggregation
exactly "new-plugin" "" :: dataset tokenizer encoder head aggregation
exactly "show" "1" "--section" "c" :: clients comm compute config

# Plugin names, from `mpsl plugins --names`, of the kind the context wants.
aggregation=$("$MPSL" plugins --names --kind aggregation)
check "there are aggregation plugins" [ -n "$aggregation" ]
# shellcheck disable=SC2086 # one name a word
exactly "runs" "--method" "" :: $aggregation
exactly "runs" "--method" "fed" :: fedavg fedprox
offers "report" "--dataset" "" :: fashion_mnist synthetic
exactly "run" "x.yaml" "--set" "strategy.plugin" "=" "fed" :: fedavg fedprox
exactly "run" "x.yaml" "--set" "strategy.plugin" "=" "" :: $aggregation
exactly "run" "x.yaml" "--set" "model.encoder.plugin" "=" "v" :: vit
exactly "run" "x.yaml" "--set" "model.tokenizers.image.plugin" "=" "im" :: image_patch
exactly "run" "x.yaml" "--set" "data.dataset.plugin" "=" "fash" :: fashion_mnist

# Files: experiment YAML for run and prepare, databases for --db, directories to descend.
mkdir -p exps sub
touch a.yaml b.yml notes.txt r.db exps/c.yaml
exactly "run" "" :: a.yaml b.yml exps sub
exactly "prepare" "ex" :: exps
exactly "run" "exps/" :: exps/c.yaml
exactly "run" "a.yaml" "" ::
exactly "run" "--set" "seed=2" "--db" "x.db" "-j" "2" "" :: a.yaml b.yml exps sub
exactly "run" "--set" "seed" "=" "2" "a" :: a.yaml
exactly "report" "-o" "x.html" "" ::
exactly "runs" "--db" "" :: r.db exps sub
exactly "--db" "" :: r.db exps sub
exactly "runs" "--db" "=" "" :: r.db exps sub
exactly "plugins" "" :: exps sub
offers "report" "-o" "" :: notes.txt r.db

# Run ids, from the database the command line (or MPSL_DB) names.
expect_ok "a run" "$MPSL" run "$EXP/fmnist_centralized.yaml" --db ids.db "${QUICK[@]}"
expect_ok "another run" "$MPSL" run "$EXP/fmnist_centralized.yaml" --db ids.db "${QUICK[@]}" --set seed=5
exactly "show" "--db" "ids.db" "" :: 1 2
exactly "--db" "ids.db" "compare" "1" "" :: 1 2
MPSL_DB=ids.db exactly "resume" "" :: 1 2
exactly "run" "--db" "ids.db" "--from-run" "" :: 1 2
exactly "plot" "--db" "ids.db" "" ::
exactly "plot" "--db" "ids.db" "test_acc" "" :: 1 2

finish
