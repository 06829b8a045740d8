# shellcheck shell=bash
# The preamble of a lab test: strict mode, the lab and hafront helpers, a built
# binary, the lab up (lab.sh's EXIT trap tears it down, also on failure), and the
# names most tests use. A test starts with
#   source "$(cd "$(dirname "$0")" && pwd)/../lib/labtest.sh"
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
source "$here/../lib/lab.sh"
source "$here/../lib/hafront.sh"
hf_build
lab_up
dir=$(lab_logdir)
VIP=192.0.2.100
PY=/usr/bin/python3 # Debian's, with python3-prometheus-client and python3-aiosmtpd
