/* cursor.h — one table's entries in key order: seek, ranges, prefixes and
 * positions over a single reader. Internal: the public sst_iter (iter.c)
 * shows one cursor, or a stack (stack.h) of several; a cursor knows only
 * its reader.
 *
 * The calls mean what the sst_iter calls of the same name mean in
 * sstable.h, for one table: an entry's `position` is its file offset and
 * its `source` is 0. A cursor is used by one thread at a time.
 */
#ifndef SST_CURSOR_H
#define SST_CURSOR_H

#include "sstable.h"

typedef struct sst_cursor sst_cursor;

/* r must outlive the cursor. 0 or ENOMEM. */
int sst_cursor_new(const sst_reader *r, sst_cursor **out);
void sst_cursor_free(sst_cursor *c);

void sst_cursor_set_skip_tombstones(sst_cursor *c, int on);
int sst_cursor_seek_first(sst_cursor *c);
int sst_cursor_seek(sst_cursor *c, const void *key, size_t key_len);
int sst_cursor_range(sst_cursor *c, const void *from, size_t from_len,
                     const void *to, size_t to_len);
int sst_cursor_prefix(sst_cursor *c, const void *prefix, size_t prefix_len);
int sst_cursor_seek_position(sst_cursor *c, uint64_t pos);
int sst_cursor_next(sst_cursor *c);

int sst_cursor_valid(const sst_cursor *c);
int sst_cursor_status(const sst_cursor *c);
/* REQUIRES: sst_cursor_valid(c). Valid until the cursor moves. */
const sst_entry *sst_cursor_entry(const sst_cursor *c);

#endif
