# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Sourced by every test and tool script (bash): the project's own environment.
#  - PATH: the project-local Python venv (.venv, made by scripts/install-deps.sh from
#    scripts/requirements.txt) comes first, so `python3` is never the system's.
#  - CORPUS: the shared xDS corpus the corpus tests read. The one variable that sets it
#    is XDS2BPF_CORPUS; without it, ../shared/corpus beside the checkout; empty if neither
#    exists (tests that need it then print one SKIP line). A set XDS2BPF_CORPUS that is
#    not a directory is an error.
X2B_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -x "$X2B_ROOT/.venv/bin/python3" ]; then
	case ":$PATH:" in *":$X2B_ROOT/.venv/bin:"*) ;; *) PATH="$X2B_ROOT/.venv/bin:$PATH" ;; esac
	export PATH
fi
if [ -n "${XDS2BPF_CORPUS:-}" ]; then
	if [ ! -d "$XDS2BPF_CORPUS" ]; then
		echo "error: XDS2BPF_CORPUS=$XDS2BPF_CORPUS is not a directory" >&2
		exit 2
	fi
	CORPUS=$(cd "$XDS2BPF_CORPUS" && pwd)
elif [ -d "$X2B_ROOT/../shared/corpus" ]; then
	CORPUS=$(cd "$X2B_ROOT/../shared/corpus" && pwd)
else
	CORPUS=""
fi
export CORPUS

# x2b_no_corpus WHAT: the one line a test prints when it skips for want of the corpus.
x2b_no_corpus() {
	echo "SKIP: $1: shared corpus not found (set XDS2BPF_CORPUS to a copy of shared/corpus)"
}
