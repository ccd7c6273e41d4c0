"""Shared policy of the privileged Python tests: skip without root, unless
CLOVIS_REQUIRE_PRIVILEGED=1 makes that a failure; a closing 'N passed, M
failed' line; exit status for ctest."""
import os
import shutil
import sys
import time
import unittest


def require_root(tools=("ip", "nft")):
    missing = [t for t in tools if not shutil.which(t)]
    reason = None
    if os.geteuid() != 0:
        reason = "needs root (network namespaces, BPF)"
    elif missing:
        reason = f"missing tools: {' '.join(missing)} (run scripts/bootstrap.sh)"
    if reason is None:
        return
    if os.environ.get("CLOVIS_REQUIRE_PRIVILEGED") == "1":
        raise RuntimeError(f"privileged test cannot run: {reason}; CLOVIS_REQUIRE_PRIVILEGED=1 "
                           "makes this a failure")
    raise unittest.SkipTest(reason)


class _CountingResult(unittest.TextTestResult):
    passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main(module_name):
    argv = sys.argv[1:]
    loader = unittest.TestLoader()
    # Every -k PATTERN, as unittest's own runner takes them (any one matches).
    patterns = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-k"]
    if patterns:
        loader.testNamePatterns = [f"*{p}*" for p in patterns]
    suite = loader.loadTestsFromModule(sys.modules[module_name])
    start = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2, resultclass=_CountingResult).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    print(f"{os.path.basename(sys.argv[0])} took {time.monotonic() - start:.1f}s")
    print(f"{result.passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 0 if failed == 0 and result.testsRun + skipped > 0 else 1
