/*
 * Runs differential cases on the software CPU: a tiny ring-0 environment
 * (page tables, GDT, IDT, TSS, one HLT per vector) around ring-3 code at
 * the same addresses the native runner uses.
 */
#ifndef TESTS_SOFT_DIFF_SOFT_EXEC_H
#define TESTS_SOFT_DIFF_SOFT_EXEC_H

#include "diff.h"

typedef struct SoftEnv SoftEnv;

/* True when the core library provides the API (it is being written). */
bool soft_env_available(void);

SoftEnv *soft_env_new(void);
void soft_env_free(SoftEnv *env);

/* Run one case; the result has the same meaning as the native one. */
void soft_env_run(SoftEnv *env, const DiffCase *c, DiffResult *r);

#endif
