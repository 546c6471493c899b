/*
 * The two machine functions the migration transports call, for unit
 * tests that link the transports without the machine.
 */
#ifndef TESTS_UNIT_MIGRATION_STUBS_H
#define TESTS_UNIT_MIGRATION_STUBS_H

/* Make @fd available to fd:@name once, like the monitor's getfd. */
void stub_monitor_add_fd(const char *name, int fd);

#endif
