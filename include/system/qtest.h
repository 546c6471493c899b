/*
 * The qtest protocol: a line-based channel over which test harnesses read
 * and write guest memory and ports (readb/writeb/read/write/..., outb/inb,
 * endianness). Writes into guest RAM go through the same dirty tracking
 * as every other write Ferry makes.
 */
#ifndef SYSTEM_QTEST_H
#define SYSTEM_QTEST_H

#include <stdbool.h>
#include <glib.h>

#include "chardev/char.h"

bool qtest_server_init(Chardev *chr, const char *log_path, GError **errp);

/* Execute one protocol line; the reply (without newline) goes to @reply. */
void qtest_execute_line(const char *line, GString *reply);

#endif
