/*
 * Comparing a native result with a software-CPU result, and describing a
 * mismatch well enough to debug it from the test log alone.
 */
#ifndef TESTS_SOFT_DIFF_COMPARE_H
#define TESTS_SOFT_DIFF_COMPARE_H

#include <glib.h>

#include "diff.h"

/*
 * True when @soft matches @native in everything the case defines. On a
 * mismatch (or a native crash) appends the case, its inputs and every
 * differing field to @report.
 */
bool diff_compare(const DiffCase *c, const DiffResult *native, const DiffResult *soft,
                  GString *report);

/* The case's bytes, text and inputs. */
void diff_describe_case(const DiffCase *c, GString *out);

/* How a run ended: "completed", "#PF (err 0x6, cr2 0x...)". */
void diff_describe_end(const DiffResult *r, GString *out);

#endif
