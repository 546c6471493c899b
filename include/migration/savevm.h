/*
 * The migration stream (docs/devel/migration-stream.md): header,
 * configuration section, participant sections with footers, commands, EOF.
 * savevm.c writes and reads it by walking the participants registered in
 * register.h.
 */
#ifndef MIGRATION_SAVEVM_H
#define MIGRATION_SAVEVM_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "migration/qemu-file.h"

#define FERRY_VM_FILE_MAGIC      0x46455252u    /* "FERR" */
#define FERRY_VM_FILE_VERSION    1

#define FERRY_VM_EOF             0x00
#define FERRY_VM_SECTION_START   0x01
#define FERRY_VM_SECTION_PART    0x02
#define FERRY_VM_SECTION_END     0x03
#define FERRY_VM_SECTION_FULL    0x04
#define FERRY_VM_CONFIGURATION   0x07
#define FERRY_VM_COMMAND         0x08
#define FERRY_VM_SECTION_FOOTER  0x7e

/* ---- Source (migration thread) ---- */
/* Header and configuration section. */
void qemu_savevm_state_header(QEMUFile *f);
/* START sections of every live participant (BQL held). */
bool qemu_savevm_state_setup(QEMUFile *f, GError **errp);
/* One PART section per live participant; true when all reported "done". */
int qemu_savevm_state_iterate(QEMUFile *f, GError **errp);
/* END sections of live participants and FULL sections of devices, then EOF (BQL held, VM stopped). */
bool qemu_savevm_state_complete_precopy(QEMUFile *f, GError **errp);
void qemu_savevm_state_pending_estimate(uint64_t *must_precopy, uint64_t *can_postcopy);
void qemu_savevm_state_pending_exact(uint64_t *must_precopy, uint64_t *can_postcopy);
void qemu_savevm_state_cleanup(void);

/* ---- Destination (load thread) ---- */
/*
 * Read and check the header and configuration (machine type, RAM blocks,
 * sizes, page size) before anything is written into the VM, then load
 * every section until EOF. @errp says what was wrong, naming the section.
 */
bool qemu_loadvm_state(QEMUFile *f, GError **errp);

#endif
