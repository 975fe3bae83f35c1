# SPDX-License-Identifier: Apache-2.0
# fish completion for ocra (installed as share/fish/vendor_completions.d/ocra.fish). Like the
# bash and zsh ones it asks the binary itself: command names from `ocra help`, options from
# `ocra help COMMAND`, so it never falls behind the program.

# The command-table labels of `ocra help`: "events", "spec check", ...
function __ocra_labels
    set -l ocra (commandline -opc)[1]
    command $ocra help 2>/dev/null | sed -n '/^commands:/,/^$/{/^  /p}' | string sub -s 3 -l 22 | string trim
end

# The words typed after ocra, without global options and their arguments.
function __ocra_words
    set -l skip 0
    for w in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case -c --config --log-format --log-level
                set skip 1
            case '-*'
            case '*'
                echo $w
        end
    end
end

function __ocra_complete
    set -l ocra (commandline -opc)[1]
    set -l words (__ocra_words)
    set -l prev (commandline -opc)[-1]
    switch $prev
        case --log-format
            printf '%s\n' text json
            return
        case --log-level
            printf '%s\n' error warn info debug
            return
        case --chain
            printf '%s\n' ain evm
            return
        case --runner
            printf '%s\n' docker slurm
            return
    end
    if test (count $words) -eq 0
        __ocra_labels | string split -f1 ' ' | sort -u
        printf '%s\n' -c --config --log-format --log-level --help --version
        return
    end
    if test "$words[1]" = help
        __ocra_labels | string split -f1 ' ' | sort -u
        return
    end
    set -l subs (__ocra_labels | string match -- "$words[1] *" | string split -f2 ' ')
    if test (count $subs) -gt 0 -a (count $words) -eq 1
        printf '%s\n' $subs
        return
    end
    set -l cmd $words[1]
    if test (count $subs) -gt 0
        set cmd $words[1] $words[2]
    end
    command $ocra help $cmd 2>/dev/null | string match -ar -- '--[a-z][a-z0-9-]*' | sort -u
end

# Files where a command (not a subcommand name) takes arguments.
function __ocra_files
    set -l words (__ocra_words)
    test (count $words) -ge 1 -a "$words[1]" != help; or return 1
    set -l subs (__ocra_labels | string match -- "$words[1] *")
    test (count $subs) -eq 0 -o (count $words) -ge 2
end

complete -c ocra -f -a '(__ocra_complete)'
complete -c ocra -n __ocra_files -F
