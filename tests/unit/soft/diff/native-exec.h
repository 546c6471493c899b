/*
 * Runs differential cases on the host CPU, in a child process, so a case
 * that faults, corrupts its own state or never ends costs the test nothing
 * but that case.
 */
#ifndef TESTS_SOFT_DIFF_NATIVE_EXEC_H
#define TESTS_SOFT_DIFF_NATIVE_EXEC_H

#include "diff.h"

/*
 * Run @n cases natively, results into @out[0..n). One child per batch;
 * a case that kills or hangs the child is reported as DIFF_END_CRASH and
 * the rest of the batch continues in a fresh child. Returns false only if
 * the child could not be started at all (@err says why).
 */
bool native_run_cases(const DiffCase *cases, size_t n, DiffResult *out, char **err);

#endif
