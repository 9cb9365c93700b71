# mpsl.bash: bash completion for the `mpsl` command.
#
# Verbs, each verb's options, option values (plugin names, formats, statuses, kinds, run ids)
# and file names (experiment YAML, databases). What can drift is asked of the command
# itself: the verbs from `mpsl --help`, a verb's options from `mpsl VERB --help`, plugin
# names from `mpsl plugins --names`, run ids from `mpsl runs --format csv`. Standalone: it
# needs neither the bash-completion package nor its helpers.
#
# Install: `meson install` puts it in share/bash-completion/completions/mpsl, where
# bash-completion finds it; without that package, `source` it from ~/.bashrc.

# The command being completed, so that ./build/core/cli/mpsl asks itself and not another mpsl.
_mpsl_cmd()
{
    local cmd=${COMP_WORDS[0]}
    [[ $cmd == \~/* ]] && cmd=$HOME/${cmd#\~/}
    command -v "$cmd" >/dev/null 2>&1 || cmd=mpsl
    printf '%s\n' "$cmd"
}

# The verbs: the first word of each line of the `verbs:` block of `mpsl --help`.
_mpsl_verbs()
{
    "$1" --help 2>/dev/null | awk '/^verbs:/ { v = 1; next } v && /^$/ { exit } v { print $1 }'
}

# A verb's options: every -x or --long-name its usage text ($1) mentions.
_mpsl_options()
{
    grep -oE '(^|[][ ,(|])--?[a-zA-Z][a-zA-Z-]*' <<<"$1" | sed 's/^[][ ,(|]//' | sort -u
    printf '%s\n' -h --help
}

# Whether option $2 takes a value, by the usage text ($1): it is followed there by a
# placeholder in capitals (--db PATH, --set KEY=VALUE) or by a list of choices (a|b).
_mpsl_takes_value()
{
    grep -qE "(^|[][ ,(|])$2( |=)([A-Z]|[a-z]+\|)" <<<"$1"
}

# Set help, a local of _mpsl (bash's scope is dynamic), to the verb's usage text: once, and
# only when needed, since each start of mpsl costs time.
_mpsl_help()
{
    [[ -n $help_read ]] || help=$("$cmd" "$verb" --help 2>/dev/null)
    help_read=1
}

# Add to COMPREPLY the files under cur that match one of the globs (every file when no glob
# matches any), and directories to descend into.
_mpsl_files()
{
    local cur=$1 f pat
    shift
    local -a files=() dirs=() matched=() all=()
    compopt -o filenames 2>/dev/null # only inside a real completion; the test calls us directly
    mapfile -t files < <(compgen -f -- "$cur")
    for f in "${files[@]}"; do
        if [[ -d $f ]]; then
            dirs+=("$f")
            continue
        fi
        all+=("$f")
        for pat in "$@"; do
            # shellcheck disable=SC2053 # pat is a glob on purpose
            if [[ $f == $pat ]]; then
                matched+=("$f")
                break
            fi
        done
    done
    [[ $# -gt 0 && ${#matched[@]} -gt 0 ]] && all=("${matched[@]}")
    COMPREPLY+=("${dirs[@]}" "${all[@]}")
}

_mpsl_dirs()
{
    compopt -o filenames 2>/dev/null
    mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -d -- "$1")
}

# Add the words (arguments, or lines of one argument) that start with cur.
_mpsl_words()
{
    local cur=$1
    shift
    local IFS=$'\n'
    mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -W "$*" -- "$cur")
}

_mpsl_plugins()
{
    local cmd=$1 kind=$2 cur=$3
    _mpsl_words "$cur" "$("$cmd" plugins --names ${kind:+--kind "$kind"} 2>/dev/null)"
}

# The kind of plugin a `--set KEY=` key names, e.g. strategy.plugin -> aggregation.
_mpsl_key_kind()
{
    case $1 in
    strategy.plugin) echo aggregation ;;
    data.dataset.plugin) echo dataset ;;
    model.encoder.plugin) echo encoder ;;
    model.head.plugin) echo head ;;
    model.tokenizers.*.plugin) echo tokenizer ;;
    esac
}

_mpsl()
{
    COMPREPLY=()
    local cword=$COMP_CWORD
    local cur=${COMP_WORDS[cword]} prev=${COMP_WORDS[cword - 1]:-} key=
    # bash splits `--db=PATH` and `--set k=v` at '=' (COMP_WORDBREAKS): put the option back
    # together with what is being typed after its '='.
    if [[ $cur == "=" ]]; then
        cur=
    elif [[ $prev == "=" && $cword -ge 2 ]]; then
        prev=${COMP_WORDS[cword - 2]}
        ((cword >= 3)) && [[ ${COMP_WORDS[cword - 3]} == --set ]] && key=$prev
    fi
    [[ ${COMP_WORDS[cword]} == "=" && $cword -ge 2 && ${COMP_WORDS[cword - 2]} == --set ]] &&
        key=$prev
    local cmd
    cmd=$(_mpsl_cmd)

    # Find the verb, after the global options (--db PATH, --db=PATH, -q, --quiet).
    local i=1 verb='' db=${MPSL_DB:-}
    while ((i < cword)); do
        case ${COMP_WORDS[i]} in
        --db)
            if [[ ${COMP_WORDS[i + 1]:-} == "=" ]]; then
                db=${COMP_WORDS[i + 2]:-}
                ((i += 3))
            else
                db=${COMP_WORDS[i + 1]:-}
                ((i += 2))
            fi
            ;;
        -*) ((i += 1)) ;;
        *)
            verb=${COMP_WORDS[i]}
            break
            ;;
        esac
    done

    if [[ -z $verb ]]; then
        case $prev in
        --db) _mpsl_files "$cur" '*.db' '*.sqlite' '*.sqlite3' ;;
        *)
            if [[ $cur == -* ]]; then
                _mpsl_words "$cur" --db -q --quiet -h --help -V --version
            else
                _mpsl_words "$cur" "$(_mpsl_verbs "$cmd")"
            fi
            ;;
        esac
        return 0
    fi

    # A --db given after the verb is the one the verb reads (for run ids).
    local j
    for ((j = i + 1; j < cword; j++)); do
        if [[ ${COMP_WORDS[j]} == --db ]]; then
            if [[ ${COMP_WORDS[j + 1]:-} == "=" ]]; then db=${COMP_WORDS[j + 2]:-}; else db=${COMP_WORDS[j + 1]:-}; fi
        fi
    done

    local help='' help_read='' # set by _mpsl_help

    # The value of an option.
    if [[ -n $key ]]; then
        local kind
        kind=$(_mpsl_key_kind "$key")
        [[ -n $kind ]] && _mpsl_plugins "$cmd" "$kind" "$cur"
        return 0
    fi
    case $prev in
    --db) _mpsl_files "$cur" '*.db' '*.sqlite' '*.sqlite3'; return 0 ;;
    -o | --out) _mpsl_files "$cur"; return 0 ;;
    --in | --dir) _mpsl_dirs "$cur"; return 0 ;;
    --kind) _mpsl_words "$cur" dataset tokenizer encoder head aggregation; return 0 ;;
    --format) _mpsl_words "$cur" table csv json; return 0 ;;
    --table) _mpsl_words "$cur" summary comm compute; return 0 ;;
    --status) _mpsl_words "$cur" running finished failed interrupted; return 0 ;;
    --method) _mpsl_plugins "$cmd" aggregation "$cur"; return 0 ;;
    --dataset) _mpsl_plugins "$cmd" dataset "$cur"; return 0 ;;
    --section)
        _mpsl_words "$cur" summary plugins tags epochs clients comm compute drift config
        return 0
        ;;
    --from-run)
        _mpsl_words "$cur" "$("$cmd" runs ${db:+--db "$db"} --format csv 2>/dev/null | tail -n +2 | cut -d, -f1)"
        return 0
        ;;
    -*)
        # Any other option with a value takes free text or a number: nothing to offer.
        _mpsl_help
        _mpsl_takes_value "$help" "$prev" && return 0
        ;;
    esac

    if [[ $cur == -* ]]; then
        _mpsl_help
        _mpsl_words "$cur" "$(_mpsl_options "$help")"
        return 0
    fi

    # Positional arguments. n: how many the verb has before this one (a word after an '=',
    # or the value of an option, is none).
    local n=0 w
    for ((j = i + 1; j < cword; j++)); do
        w=${COMP_WORDS[j]}
        [[ $w == "=" || $w == -* || ${COMP_WORDS[j - 1]} == "=" ]] && continue
        if [[ ${COMP_WORDS[j - 1]} == -* ]]; then
            _mpsl_help
            _mpsl_takes_value "$help" "${COMP_WORDS[j - 1]}" && continue
        fi
        ((n++))
    done
    case $verb in
    run | prepare | estimate) ((n == 0)) && _mpsl_files "$cur" '*.yaml' '*.yml' ;;
    plugins) _mpsl_dirs "$cur" ;;
    help) ((n == 0)) && _mpsl_words "$cur" "$(_mpsl_verbs "$cmd")" ;;
    new-plugin) ((n == 0)) && _mpsl_words "$cur" dataset tokenizer encoder head aggregation ;;
    fetch)
        if ((n == 0)); then
            _mpsl_words "$cur" "$("$cmd" fetch --list 2>/dev/null | awk 'NR > 1 { print $1 }')"
            _mpsl_files "$cur" '*.yaml' '*.yml'
        fi
        ;;
    convert)
        ((n == 0)) && _mpsl_words "$cur" "$("$cmd" convert --list 2>/dev/null | awk '{ print $1 }')"
        ;;
    resume | show | compare | diff | report | plot)
        # plot's first argument is a metric, not a run.
        if [[ $verb != plot || $n -gt 0 ]]; then
            _mpsl_words "$cur" "$("$cmd" runs ${db:+--db "$db"} --format csv 2>/dev/null | tail -n +2 | cut -d, -f1)"
        fi
        ;;
    esac
    return 0
}

complete -F _mpsl mpsl
