#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_package.sh OCRA: `make install` into a scratch prefix puts every file where the docs say
# (the two programs, the Slurm epilog, the planner's data, the man page, bash completion, the
# example configuration, the contract, the systemd unit naming the installed binary); the installed
# ocra plans with the installed data; the man page is generated from the binary's help and up
# to date, and renders without groff warnings; the unit passes systemd-analyze verify; the
# completion completes commands, subcommands and options.
set -u
ocra=${1:?usage: it_package.sh PATH_TO_OCRA}
ocra=$(cd "$(dirname "$ocra")" && pwd)/$(basename "$ocra")
cd "$(dirname "$0")/.."
. tests/lib/check.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

if make install PREFIX="$prefix" BUILD="$tmp/build" >"$tmp/install.log" 2>&1; then ok make_install; else
    fail make_install "$(tail -20 "$tmp/install.log")"; check_done; exit 1; fi
for f in bin/ocra libexec/ocra/ocra-agent libexec/ocra/ocra-epilog share/ocra/data/pytorch.json share/ocra/data/gpus.json \
    share/man/man1/ocra.1 share/bash-completion/completions/ocra \
    share/zsh/vendor-completions/_ocra share/fish/vendor_completions.d/ocra.fish \
    share/ocra/prometheus/ocra.rules.yml share/ocra/grafana/ocra.json \
    share/doc/ocra/examples/ocra.yaml share/ocra/contracts/ModelRegistry.sol \
    share/ocra/contracts/ModelRegistry.abi.json share/ocra/contracts/ModelRegistry.bin \
    lib/systemd/system/ocra.service; do
    [ -f "$prefix/$f" ] || missing="${missing:-} $f"
done
[ -z "${missing:-}" ] && ok installed_files || fail installed_files "missing:$missing"
"$prefix/bin/ocra" --version | grep -q '^ocra ' && ok installed_ocra_runs || fail installed_ocra_runs "$("$prefix/bin/ocra" --version 2>&1)"
"$prefix/libexec/ocra/ocra-agent" --version | grep -q '^ocra-agent ' && ok installed_agent_runs ||
    fail installed_agent_runs "$("$prefix/libexec/ocra/ocra-agent" --version 2>&1)"
[ -x "$prefix/libexec/ocra/ocra-epilog" ] && sh -n "$prefix/libexec/ocra/ocra-epilog" &&
    ok installed_slurm_epilog || fail installed_slurm_epilog "not an executable sh script"
file "$prefix/libexec/ocra/ocra-agent" | grep -q 'statically linked' && ok agent_is_static ||
    fail agent_is_static "$(file "$prefix/libexec/ocra/ocra-agent")"

# The installed binary reads the installed tables: break the source tree's path to be sure.
env -u OCRA_DATA_DIR "$prefix/bin/ocra" plan examples/sentiment-bert.json >"$tmp/plan.out" 2>"$tmp/plan.err" &&
    grep -q "toolchain" "$tmp/plan.out" && ok installed_plan_uses_installed_data ||
    fail installed_plan_uses_installed_data "$(cat "$tmp/plan.err")"
OCRA_DATA_DIR=$tmp/nowhere "$prefix/bin/ocra" plan examples/sentiment-bert.json >/dev/null 2>"$tmp/plan.err"
[ $? -ne 0 ] && grep -q "nowhere" "$tmp/plan.err" && ok data_dir_env_overrides ||
    fail data_dir_env_overrides "$(cat "$tmp/plan.err")"
strings "$prefix/bin/ocra" | grep -q "$prefix/share/ocra/data" && ok data_dir_compiled_in ||
    fail data_dir_compiled_in "the installed prefix is not compiled in"

# The man page: generated from the help, up to date, clean.
scripts/gen-man "$ocra" >"$tmp/ocra.1"
if diff -q "$tmp/ocra.1" docs/ocra.1 >/dev/null; then ok man_page_up_to_date; else
    fail man_page_up_to_date "docs/ocra.1 is stale: make man ($(diff "$tmp/ocra.1" docs/ocra.1 | head -5))"; fi
if command -v groff >/dev/null; then
    w=$(groff -man -Tutf8 -ww -z docs/ocra.1 2>&1)
    [ -z "$w" ] && ok man_page_renders_clean || fail man_page_renders_clean "$w"
else
    fail man_page_renders_clean "groff not installed (scripts/install-deps test installs groff-base)"
fi
for cmd in $("$ocra" help | sed -n '/^commands:/,/^$/s/^  \([a-z-]*\).*/\1/p' | sort -u); do
    grep -q "^.B ocra $cmd" docs/ocra.1 || nocmd="${nocmd:-} $cmd"
done
[ -z "${nocmd:-}" ] && ok man_page_has_every_command || fail man_page_has_every_command "missing:$nocmd"
# Every command's help shows examples, and the page gathers them in EXAMPLES.
while read -r cmd; do
    # shellcheck disable=SC2086 # "spec check" is two words
    "$ocra" help $cmd | grep -q '^examples:$' || noex="${noex:-} [$cmd]"
done < <("$ocra" help | sed -n '/^commands:/,/^$/{/^  /p}' | cut -c3-24 | sed 's/ *$//' | grep .)
[ -z "${noex:-}" ] && ok help_has_examples || fail help_has_examples "no examples:$noex"
grep -q '^.SH EXAMPLES' docs/ocra.1 && grep -q '^ocra retry ' docs/ocra.1 && ok man_page_examples ||
    fail man_page_examples "no EXAMPLES section with the commands' examples (make man)"

# The container image (Dockerfile: not built here, its apt-get needs the network): it makes
# the agent socket directory (agent.socket_dir's default) and its documented run mounts it at
# the same path, or workloads run without their agent.
sockdir=$("$ocra" config doc | sed -n 's/^| `agent.socket_dir` | path | `"\([^"]*\)"`.*/\1/p')
grep -q "install -d .*$sockdir\$" Dockerfile && grep -q "^#.* -v $sockdir:$sockdir " Dockerfile &&
    ok dockerfile_agent_socket_dir || fail dockerfile_agent_socket_dir "agent.socket_dir '$sockdir' not made or not mounted in Dockerfile"

# The systemd unit.
unit=$prefix/lib/systemd/system/ocra.service
grep -q "^ExecStart=$prefix/bin/ocra " "$unit" && ok unit_names_installed_binary || fail unit_names_installed_binary "$(grep ExecStart "$unit")"
for d in NoNewPrivileges=yes ProtectSystem=strict CapabilityBoundingSet= PrivateTmp=yes \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' User=ocra; do
    grep -qxF "$d" "$unit" || nodir="${nodir:-} $d"
done
[ -z "${nodir:-}" ] && ok unit_sandboxing || fail unit_sandboxing "missing:$nodir"
if command -v systemd-analyze >/dev/null; then
    # verify wants the unit's user to exist only at run time; it checks syntax and ExecStart.
    MANPATH=$prefix/share/man systemd-analyze verify "$unit" >"$tmp/verify" 2>&1
    bad=$(grep -v -e 'Failed to resolve user' -e 'Unknown user' -e 'SupplementaryGroups' -e 'network-online' -e 'docker.service' "$tmp/verify" | grep -v '^$')
    [ -z "$bad" ] && ok unit_verifies || fail unit_verifies "$bad"
else
    fail unit_verifies "systemd-analyze not installed (Debian package systemd)"
fi

# Completion asks the binary.
out=$(PATH=$(dirname "$ocra"):$PATH bash -c '
. etc/completion/ocra.bash
t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _ocra; echo "${COMPREPLY[*]}"; }
t ocra ser; t ocra config c; t ocra events --sta; t ocra --log-level w')
[ "$out" = "serve
check
--status
warn" ] && ok bash_completion || fail bash_completion "$(echo "$out" | tr '\n' '|')"
want='serve|check|--status|warn|queue|queue|'
if command -v zsh >/dev/null; then
    # _ocra's own logic, with compadd and _files standing in for the completion system's.
    out=$(PATH=$(dirname "$ocra"):$PATH zsh -c '
compadd() { local w; [[ $1 == -- ]] && shift; for w in "$@"; do [[ $w == ${PREFIX}* ]] && print -r -- $w; done; }
_files() { print -r -- FILES; }
compdef() { :; }
source etc/completion/_ocra
t() { words=("$@"); CURRENT=${#words}; PREFIX=${words[-1]}; _ocra; }
t ocra ser; t ocra config c; t ocra events --sta; t ocra --log-level w; t ocra -c x.yaml que; t ocra help que' 2>&1 | tr '\n' '|')
    [ "$out" = "$want" ] && ok zsh_completion || fail zsh_completion "$out"
else
    fail zsh_completion "zsh not installed (scripts/install-deps test installs it)"
fi
if command -v fish >/dev/null; then
    out=$(PATH=$(dirname "$ocra"):$PATH fish -c 'source etc/completion/ocra.fish
for c in "ocra ser" "ocra config c" "ocra events --sta" "ocra --log-level w" "ocra -c x.yaml que" "ocra help que"
    complete -C "$c"
end' 2>&1 | tr '\n' '|')
    [ "$out" = "$want" ] && ok fish_completion || fail fish_completion "$out"
else
    fail fish_completion "fish not installed (scripts/install-deps test installs it)"
fi

check_done
