#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# it_plan.sh OCRA: `ocra plan` as a user runs it: the three formats, exit statuses for
# invalid and unplannable specs, the configuration's plan.* keys through -c and --config,
# a broken data table, and byte-identical output on repeated runs. Run from the repository
# root (ctest does).
set -u
ocra=${1:?usage: it_plan.sh PATH_TO_OCRA}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "$0")/lib/check.sh"

expect text 0 "$ocra" plan examples/seed.json &&
    has text "$tmp/out" "baseImage          nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04"
cp "$tmp/out" "$tmp/first"
expect text_again 0 "$ocra" plan examples/seed.json &&
    if cmp -s "$tmp/out" "$tmp/first"; then ok text_again; else fail text_again "output differs"; fi
expect dockerfile 0 "$ocra" plan --format dockerfile examples/sentiment-bert.json &&
    has dockerfile "$tmp/out" 'CMD ["python3", "-m", "serve", "--port", "8080"]'
if [ "$(head -c 11 "$tmp/out")" = "# Generated" ]; then ok dockerfile_only; else fail dockerfile_only "not a Dockerfile"; fi
# its baseImage (nvcr.io/nvidia/pytorch) is not one of the planner's own: refused by default,
# planned where the operator allows the registry (plan.base_images)
expect base_not_allowed_by_default 2 "$ocra" plan -F json examples/llama-7b-train.json &&
    has base_not_allowed_by_default "$tmp/err" "baseImage: nvcr.io/nvidia/pytorch is not allowed as a base: plan.base_images is unset"
has base_not_allowed_rule "$tmp/err" "[plan.base_image]"
printf 'plan:\n  base_images: ["nvcr.io/nvidia/"]\n' >"$tmp/nvcr.yaml"
expect json 0 "$ocra" -c "$tmp/nvcr.yaml" plan -F json examples/llama-7b-train.json &&
    has json "$tmp/out" '"imageId": "llama-7b:1.0.1"'
if command -v python3 >/dev/null; then
    if python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert len(j["toolchain"]["hash"]) == 64' "$tmp/out"; then
        ok json_parses
    else
        fail json_parses "not JSON with a toolchain hash"
    fi
fi
expect bad_format 2 "$ocra" plan --format yaml examples/seed.json && ok bad_format
expect no_spec 2 "$ocra" plan && ok no_spec
expect hostile_is_2 2 "$ocra" plan examples/hostile.json &&
    has hostile_is_2 "$tmp/err" "examples/hostile.json: modelVersion:"
has hostile_counts "$tmp/err" "cannot plan (4 problems)"

printf '{"modelVersion":"1.0.0","toolsAndLibraries":{"PyTorch":"2.9.0"}}\n' >"$tmp/future.json"
expect future_is_2 2 "$ocra" plan "$tmp/future.json" &&
    has future_is_2 "$tmp/err" "newer than the newest version ocra knows (2.5.1"
has future_names_way_out "$tmp/err" "set baseImage in the spec"

cat >"$tmp/ocra.yaml" <<'YAML'
plan:
  pip_index_url: "https://pypi.internal/simple"
  mirrors:
    - from: "nvidia/cuda"
      to: "registry.internal:5000/mirror/nvidia/cuda"
YAML
expect config_global 0 "$ocra" -c "$tmp/ocra.yaml" plan examples/seed.json &&
    has config_global "$tmp/out" "registry.internal:5000/mirror/nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04"
has config_pip_index "$tmp/out" '"--index-url", "https://pypi.internal/simple", "tensorflow==2.15.0"'
cp "$tmp/out" "$tmp/global"
expect config_option 0 "$ocra" plan --config "$tmp/ocra.yaml" examples/seed.json &&
    if cmp -s "$tmp/out" "$tmp/global"; then ok config_option; else fail config_option "differs from -c"; fi

mkdir "$tmp/data" && cp data/*.json "$tmp/data/" && printf '{"table":"gpus"}' >"$tmp/data/gpus.json"
expect broken_table_is_1 1 env OCRA_DATA_DIR="$tmp/data" "$ocra" plan examples/seed.json &&
    has broken_table_is_1 "$tmp/err" "gpus.json"

check_done
