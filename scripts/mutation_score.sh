#!/usr/bin/env bash
# Mutation score of the fast tests: mutmut (pyproject.toml, [tool.mutmut])
# mutates every function of mmevit/models, mmevit/checkpoint (with
# engine/model_loading.py) and mmevit/deploy, runs the fast tests that execute
# each mutant, and tools/analysis_tools/mutation_report.py counts the killed
# mutants per package. A side venv (.venv-mutmut) sees the newest stack's
# packages, so the test venv stays as `make test` installs it.
#
#   bash scripts/mutation_score.sh        # every mutant (many hours on 2 cores)
#   bash scripts/mutation_score.sh 150    # 150 mutants per package, drawn at random
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PER_PACKAGE=${1:-all}
make --no-print-directory .venv/.mmevit-installed
MUT=.venv-mutmut
if [ ! -x "$MUT/bin/mutmut" ]; then
    .venv/bin/python -m venv "$MUT"
    stack_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    own_site=$("$MUT/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "import site; site.addsitedir('$stack_site')" > "$own_site/newest_stack.pth"
    "$MUT/bin/python" -m pip install --quiet mutmut==3.8.1
fi
cores=$(nproc --all)
export OMP_NUM_THREADS=1  # one thread per mutant process, one process per core
rm -rf mutants
if [ "$PER_PACKAGE" = all ]; then
    "$MUT/bin/mutmut" run --max-children "$cores"
else
    # mutmut makes the mutants (and maps tests to functions) on its first run;
    # a run of the eight mutants of bn_folding does that, then the draw runs
    "$MUT/bin/mutmut" run --max-children "$cores" 'mmevit.models.bn_folding*'
    # shellcheck disable=SC2046
    "$MUT/bin/mutmut" run --max-children "$cores" \
        $("$MUT/bin/python" tools/analysis_tools/mutation_report.py --draw "$PER_PACKAGE")
fi
"$MUT/bin/python" tools/analysis_tools/mutation_report.py
