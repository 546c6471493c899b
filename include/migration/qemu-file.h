/*
 * QEMUFile: a buffered byte stream over a migration channel, the unit
 * every migration participant writes to and reads from.
 *
 * Output batches small writes in an internal buffer and large payloads
 * (guest pages) as iovecs that point at their source memory, and sends
 * them with one vectored write when the batch is full or on flush: page
 * data is not copied. Input reads ahead into a buffer.
 *
 * Errors are sticky: after the first one, puts are dropped and gets
 * return zeros; callers check qemu_file_get_error() at record boundaries.
 * One thread uses a QEMUFile at a time.
 */
#ifndef MIGRATION_QEMU_FILE_H
#define MIGRATION_QEMU_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <glib.h>

#include "migration/channel.h"

typedef struct QEMUFile QEMUFile;

/* The file takes ownership of @ch and frees it in qemu_fclose(). */
QEMUFile *qemu_file_new_output(MigChannel *ch);
QEMUFile *qemu_file_new_input(MigChannel *ch);
/* Flush (output) and free; returns the first error (0 or -errno). */
int qemu_fclose(QEMUFile *f);
MigChannel *qemu_file_channel(QEMUFile *f);

/* Output. */
void qemu_put_byte(QEMUFile *f, uint8_t v);
void qemu_put_be16(QEMUFile *f, uint16_t v);
void qemu_put_be32(QEMUFile *f, uint32_t v);
void qemu_put_be64(QEMUFile *f, uint64_t v);
void qemu_put_buffer(QEMUFile *f, const void *buf, size_t len);
/*
 * Queue @len bytes at @buf without copying: @buf must stay valid and
 * unchanged-or-don't-care until the next flush (guest RAM qualifies: a
 * page rewritten meanwhile is dirty again and is sent again).
 */
void qemu_put_buffer_nocopy(QEMUFile *f, const void *buf, size_t len);
/* u8 length + bytes (at most 255). */
void qemu_put_counted_string(QEMUFile *f, const char *s);
int qemu_fflush(QEMUFile *f);

/* Input. Short reads at end of stream set the error "unexpected end of stream". */
uint8_t qemu_get_byte(QEMUFile *f);
uint16_t qemu_get_be16(QEMUFile *f);
uint32_t qemu_get_be32(QEMUFile *f);
uint64_t qemu_get_be64(QEMUFile *f);
/* Fills @buf completely or sets the error; returns bytes copied. */
size_t qemu_get_buffer(QEMUFile *f, void *buf, size_t len);
/* The next byte without consuming it; -1 at end of stream. */
int qemu_peek_byte(QEMUFile *f);
/* Reads u8 length + bytes into @buf (NUL-terminated); false on error. */
bool qemu_get_counted_string(QEMUFile *f, char buf[256]);
/*
 * True once the stream ended cleanly (no bytes left, no error). Known only
 * after a get or qemu_peek_byte() met the end: this call does not read.
 */
bool qemu_file_at_eof(QEMUFile *f);

/*
 * Errors. These three may be called from any thread (a return-path
 * thread failing the main stream, a monitor reading the state).
 */
int qemu_file_get_error(QEMUFile *f);
/*
 * A message for the first error, e.g. "writing to tcp:...: Connection
 * reset by peer"; NULL while there is none.
 */
const char *qemu_file_error_message(QEMUFile *f);
/*
 * Only the first error sticks. @err is -errno (a positive value is
 * negated; 0 is ignored); a NULL @fmt uses strerror's text.
 */
void qemu_file_set_error(QEMUFile *f, int err, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/*
 * Output: bytes handed to the channel so far, plus buffered (queued).
 * Input: bytes consumed by gets, i.e. the stream offset of the next byte
 * (read-ahead not yet consumed is not counted).
 */
uint64_t qemu_file_transferred(QEMUFile *f);

#endif
