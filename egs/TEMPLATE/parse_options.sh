# Options for the recipe scripts, sourced by egs/TEMPLATE/tts.sh and the recipes' own scripts.
#
#   . egs/TEMPLATE/parse_options.sh
#   option stage 0 "first stage to run"     # declares $stage with its default and its help line
#   usage() { echo "usage: ..."; }          # optional: printed by --help before the options
#   parse_options "$@"
#
# Every option takes a value: --name VALUE or --name=VALUE (--stop-stage is --stop_stage). A later
# --name wins over an earlier one, so a recipe passes its defaults first and the user's "$@" last.
# --help (or -h) prints usage and every option with its current value, then exits 0. An unknown
# option, a missing value or a stray argument is one line on stderr and exit status 2.
# shellcheck shell=bash disable=SC2034,SC2119,SC2120  # variables and functions for the sourcing script

_option_names=()
_option_help=()

option() {  # NAME DEFAULT HELP
  _option_names+=("$1")
  _option_help+=("$3")
  printf -v "$1" '%s' "$2"
}

usage_error() {  # MESSAGE: one line on stderr naming the script ($recipe when set), exit 2
  echo "${recipe:-$0}: $*; see --help" >&2
  exit 2
}

print_options() {  # [TITLE]
  local i value
  echo "${1:-options}:"
  for i in "${!_option_names[@]}"; do
    value=${!_option_names[i]}
    printf '  --%-17s %s [%s]\n' "${_option_names[i]}" "${_option_help[i]}" "${value:-empty}"
  done
}

_is_option() {
  local known
  for known in "${_option_names[@]}"; do [[ $known == "$1" ]] && return 0; done
  return 1
}

# parse_options [--pass] ARGS...: set the declared options from ARGS. With --pass, options this
# script does not declare are kept, in order, in the array passed_options (for a script it calls),
# and --help only sets help_requested=1.
parse_options() {
  local pass=0 name value
  passed_options=()
  help_requested=0
  if [[ ${1:-} == --pass ]]; then pass=1; shift; fi
  while (($#)); do
    case $1 in
      -h | --help)
        if ((pass)); then help_requested=1; shift; continue; fi
        if declare -F usage > /dev/null; then usage; echo; fi
        print_options
        exit 0
        ;;
      --?*=*) name=${1%%=*} value=${1#*=}; shift ;;
      --?*)
        (($# >= 2)) || usage_error "$1 needs a value"
        name=$1 value=$2
        shift 2
        ;;
      *) usage_error "unexpected argument '$1' (options are --name VALUE)" ;;
    esac
    name=${name#--}
    name=${name//-/_}
    if _is_option "$name"; then
      printf -v "$name" '%s' "$value"
    elif ((pass)); then
      passed_options+=("--$name" "$value")
    else
      usage_error "unknown option --$name"
    fi
  done
}

require_int() {  # NAME...: each option holds a non-negative integer (or is empty, with --empty-ok first)
  local empty_ok=0 name
  if [[ $1 == --empty-ok ]]; then empty_ok=1; shift; fi
  for name in "$@"; do
    [[ ${!name} =~ ^[0-9]+$ ]] || { ((empty_ok)) && [[ -z ${!name} ]]; } ||
      usage_error "--$name: expected a non-negative integer, got '${!name}'"
  done
}
