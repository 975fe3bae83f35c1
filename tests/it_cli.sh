#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_cli.sh OCRA: the `ocra` command line as a user runs it: help, version, exit statuses,
# `spec check` on the examples, `config check`, `config doc` against docs/CONFIG.md, `init`.
# Run from the repository root (ctest does).
set -u
ocra=${1:?usage: it_cli.sh PATH_TO_OCRA}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "$0")/lib/check.sh"

expect help_lists_commands 0 "$ocra" --help && has help_lists_commands "$tmp/out" "spec check"
has help_documents_exit_status "$tmp/out" "2  bad input or usage"
expect version 0 "$ocra" --version && has version "$tmp/out" "ocra 0."
expect help_cmd 0 "$ocra" help spec check && has help_cmd "$tmp/out" "usage: ocra spec check"
expect cmd_dash_help 0 "$ocra" init --help && has cmd_dash_help "$tmp/out" "usage: ocra init"
expect no_command_is_usage 2 "$ocra" && ok no_command_is_usage
expect unknown_command_is_usage 2 "$ocra" frobnicate && has unknown_command_is_usage "$tmp/err" "no command 'frobnicate'"
expect did_you_mean_command 2 "$ocra" evnts && has did_you_mean_command "$tmp/err" "did you mean 'events'?"
expect did_you_mean_subcommand 2 "$ocra" spec chek && has did_you_mean_subcommand "$tmp/err" "did you mean 'spec check'?"
expect did_you_mean_help 2 "$ocra" help qeueu && has did_you_mean_help "$tmp/err" "did you mean 'queue'?"
expect events_bad_status 2 "$ocra" events --status bogus --journal "$tmp/events.db" && has events_bad_status "$tmp/err" "unknown status 'bogus' (one of accepted, rejected,"
has events_bad_status_lists_queued "$tmp/err" "queued"
expect unknown_option_is_usage 2 "$ocra" spec check --bogus examples/seed.json && ok unknown_option_is_usage
expect bad_log_format 2 "$ocra" --log-format xml version && has bad_log_format "$tmp/err" "--log-format"

# spec check: valid examples print one canonical line each.
valid=(examples/seed.json examples/sentiment-bert.json examples/llama-7b-train.json)
if expect spec_check_valid 0 "$ocra" spec check "${valid[@]}"; then
    if [ "$(wc -l <"$tmp/out")" -eq ${#valid[@]} ]; then ok spec_check_valid; else fail spec_check_valid "want ${#valid[@]} lines"; fi
fi
has spec_seed_gets_name_from_file "$tmp/out" '"name":"seed"'
expect spec_check_hostile 2 "$ocra" spec check examples/hostile.json && has spec_check_hostile "$tmp/err" "[name.pattern]"
has spec_hostile_names_value "$tmp/err" '1.0; rm -rf /'
# A problem names its field and rule once: "FILE: FIELD: PROBLEM [RULE]".
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["modelversion"]=d.pop("modelVersion"); print(json.dumps(d))' examples/seed.json >"$tmp/typo.json"
expect spec_problem_said_once 2 "$ocra" spec check "$tmp/typo.json" &&
    has spec_problem_said_once "$tmp/err" "typo.json: modelversion: unknown key \"modelversion\"; did you mean \"modelVersion\"? [key.unknown]"
expect spec_check_mixed 2 "$ocra" spec check examples/seed.json examples/hostile.json && has spec_check_mixed "$tmp/out" '"modelVersion":"2.0.0"'
expect spec_check_missing_file 2 "$ocra" spec check "$tmp/nope.json" && has spec_check_missing_file "$tmp/err" "No such file"
expect spec_check_stdin 0 "$ocra" spec check --name from-stdin - <examples/seed.json && has spec_check_stdin "$tmp/out" '"name":"from-stdin"'
# The canonical form is a fixed point.
"$ocra" spec check -q examples/sentiment-bert.json >"$tmp/c1" 2>/dev/null
"$ocra" spec check -q --name sentiment-bert - <"$tmp/c1" >"$tmp/c2" 2>/dev/null
if cmp -s "$tmp/c1" "$tmp/c2"; then ok canonical_is_fixed_point; else fail canonical_is_fixed_point "differs"; fi

# config
expect config_doc_matches_docs 0 "$ocra" config doc && { if cmp -s "$tmp/out" docs/CONFIG.md; then ok config_doc_matches_docs; else fail config_doc_matches_docs "docs/CONFIG.md is stale: ocra config doc > docs/CONFIG.md"; fi; }
printf 'log:\n  levl: debug\n' >"$tmp/bad.yaml"
expect config_check_bad 2 "$ocra" config check "$tmp/bad.yaml" && has config_check_bad "$tmp/err" "$tmp/bad.yaml:2: log.levl"
expect config_check_missing 1 "$ocra" config check "$tmp/none.yaml" && ok config_check_missing
expect global_config_bad_is_usage 2 "$ocra" -c "$tmp/bad.yaml" spec check examples/seed.json && ok global_config_bad_is_usage
printf 'spec:\n  http_hosts: ["127.0.0.1:8099"]\nartifact:\n  allow_hosts: ["127.0.0.1"]\n' >"$tmp/http.yaml"
printf 'spec:\n  http_hosts: ["127.0.0.1:8099"]\n' >"$tmp/http-only.yaml"
sed 's#https://[^/"]*/#http://127.0.0.1:8099/#' examples/sentiment-bert.json >"$tmp/http-spec.json"
expect http_uri_rejected_by_default 2 "$ocra" spec check "$tmp/http-spec.json" && has http_uri_rejected_by_default "$tmp/err" "artifact.uri"
expect http_uri_allowed_by_config 0 "$ocra" -c "$tmp/http.yaml" spec check "$tmp/http-spec.json" && ok http_uri_allowed_by_config
expect http_uri_loopback_not_allowed 2 "$ocra" -c "$tmp/http-only.yaml" spec check "$tmp/http-spec.json" &&
    has http_uri_loopback_not_allowed "$tmp/err" "names a loopback address"
# A literal internal address in an artifact URI, in any spelling, is refused with the default
# configuration (an oracle on internal services otherwise), unless artifact.allow_hosts or
# --allow-host lists it.
n=0
for u in https://127.0.0.1/ https://127.1:8443/ https://2130706433/ https://0x7f.0.0.1/ \
    https://0177.0.0.1/ 'https://[::ffff:127.0.0.1]/' 'https://[::1]/' https://localhost/ \
    https://10.0.0.1/ https://172.16.5.4/ https://192.168.1.1/ https://169.254.169.254/ \
    'https://[fe80::1]/' 'https://[fd00:ec2::254]/' https://0.0.0.0/; do
    n=$((n + 1))
    sed "s#https://[^/\"]*/#$u#" examples/sentiment-bert.json >"$tmp/lit$n.json"
    if expect "literal_address_refused_$n" 2 "$ocra" spec check "$tmp/lit$n.json"; then
        if grep -qF "[uri.address]" "$tmp/err"; then ok "literal_address_refused_$n"; else
            fail "literal_address_refused_$n" "$u: $(head -c 300 "$tmp/err")"; fi
    fi
done
sed 's#https://[^/"]*/#https://8.8.8.8/#' examples/sentiment-bert.json >"$tmp/pub.json"
expect literal_public_address_valid 0 "$ocra" spec check "$tmp/pub.json" && ok literal_public_address_valid
expect literal_address_allowed_by_flag 0 "$ocra" spec check --allow-host 10.0.0.0/8 "$tmp/lit9.json" &&
    ok literal_address_allowed_by_flag
printf 'artifact:\n  allow_hosts: ["fe80::/10", localhost]\n' >"$tmp/allow.yaml"
expect literal_address_allowed_by_config 0 "$ocra" -c "$tmp/allow.yaml" spec check "$tmp/lit13.json" "$tmp/lit8.json" &&
    ok literal_address_allowed_by_config
expect literal_address_outside_the_allowed 2 "$ocra" -c "$tmp/allow.yaml" spec check "$tmp/lit12.json" &&
    has literal_address_outside_the_allowed "$tmp/err" "names a cloud metadata address"

# init
expect init_creates 0 "$ocra" init "$tmp/site/a" && has init_creates "$tmp/out" "schema version"
[ -f "$tmp/site/a/ocra.yaml" ] && ok init_writes_config || fail init_writes_config "no ocra.yaml"
[ -f "$tmp/site/a/journal.db" ] && ok init_creates_journal || fail init_creates_journal "no journal.db"
expect init_config_is_valid 0 "$ocra" config check "$tmp/site/a/ocra.yaml" && ok init_config_is_valid
echo "# mine" >>"$tmp/site/a/ocra.yaml"
expect init_is_idempotent 0 "$ocra" init "$tmp/site/a" && has init_is_idempotent "$tmp/site/a/ocra.yaml" "# mine"
expect init_force 0 "$ocra" init --force "$tmp/site/a" && { if grep -qF "# mine" "$tmp/site/a/ocra.yaml"; then fail init_force "not overwritten"; else ok init_force; fi; }
# --log-format wins over the configuration's log.format.
printf 'log:\n  format: text\n' >"$tmp/textlog.yaml"
if expect json_logs_flag_wins 1 "$ocra" -c "$tmp/textlog.yaml" --log-format json watch --rpc http://127.0.0.1:9/json-rpc --path '/apps/x/models/$name' --journal "$tmp/j.db" --once; then
    head -1 "$tmp/err" | python3 -c 'import json,sys; e=json.loads(sys.stdin.readline()); assert e["level"]=="info" and e["source"]=="ain:0"' && ok json_logs_flag_wins || fail json_logs_flag_wins "$(head -2 "$tmp/err")"
fi

check_done
