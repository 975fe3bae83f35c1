# SPDX-License-Identifier: Apache-2.0
# bash completion for ocra (installed as share/bash-completion/completions/ocra). It asks the
# binary itself: command names from `ocra help`, options from `ocra help COMMAND`, so it never
# falls behind the program.

_ocra_commands() {
    "$1" help 2>/dev/null | sed -n '/^commands:/,/^$/s/^  \([a-z-]*\).*/\1/p' | sort -u
}

_ocra_subcommands() { # OCRA COMMAND
    "$1" help 2>/dev/null | sed -n "/^commands:/,/^\$/s/^  $2 \\([a-z-]*\\) .*/\\1/p"
}

_ocra_options() { # OCRA WORDS...
    "$@" --help 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*' | sort -u
}

_ocra() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
    fi
    local ocra=${words[0]} i cmd= sub=
    # The words so far without global options and their arguments.
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        -c | --config | --log-format | --log-level) ((i++)) ;;
        -*) ;;
        *)
            if [ -z "$cmd" ]; then cmd=${words[i]}; elif [ -z "$sub" ]; then sub=${words[i]}; fi
            ;;
        esac
    done
    case $prev in
    -c | --config | --journal | --key | --key-file | --sign-key | --token-file | --nodes | --pods | --trace | --event | --cache | --out | -o)
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
    --log-format)
        COMPREPLY=($(compgen -W "text json" -- "$cur"))
        return
        ;;
    --log-level)
        COMPREPLY=($(compgen -W "error warn info debug" -- "$cur"))
        return
        ;;
    --chain)
        COMPREPLY=($(compgen -W "ain evm" -- "$cur"))
        return
        ;;
    --runner)
        COMPREPLY=($(compgen -W "docker slurm" -- "$cur"))
        return
        ;;
    --policy)
        COMPREPLY=($(compgen -W "first-fit best-fit cheapest fgd" -- "$cur"))
        return
        ;;
    esac
    if [ -z "$cmd" ]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "-c --config --log-format --log-level --help --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$(_ocra_commands "$ocra")" -- "$cur"))
        fi
        return
    fi
    local subs
    subs=$(_ocra_subcommands "$ocra" "$cmd")
    if [ -n "$subs" ] && [ -z "$sub" ]; then
        COMPREPLY=($(compgen -W "$subs" -- "$cur"))
        return
    fi
    if [ "$cmd" = help ]; then
        COMPREPLY=($(compgen -W "$(_ocra_commands "$ocra")" -- "$cur"))
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_ocra_options "$ocra" $cmd $sub)" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F _ocra ocra
