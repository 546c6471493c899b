/* -m and -object memory-backend-*: the RAM block that backs the machine. */
#ifndef SYSTEM_MEMORY_BACKEND_H
#define SYSTEM_MEMORY_BACKEND_H

#include "system/cmdline.h"
#include "system/ramblock.h"

/*
 * Create every -object memory backend, then the machine's RAM: the backend
 * named by -machine memory-backend=ID, or anonymous "pc.ram" of -m size.
 */
RAMBlock *memory_backend_create_machine_ram(FerryConfig *cfg, GError **errp);

#endif
