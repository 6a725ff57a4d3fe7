/* stack.h — several tables seen as one, the later ones on top: the
 * iterator behind sst_iter_new_stack. Internal: it reads each table
 * through a cursor (cursor.h) and knows nothing of sst_iter.
 *
 * The calls mean what the sst_iter calls of the same name mean in
 * sstable.h for an iterator over a stack. A stack is used by one thread
 * at a time.
 */
#ifndef SST_STACK_H
#define SST_STACK_H

#include "sstable.h"

typedef struct sst_stack sst_stack;

/* The readers must outlive the stack; readers[n - 1] is on top.
 * 0, SST_EINVAL for n == 0, or ENOMEM. */
int sst_stack_new(const sst_reader *const *readers, size_t n, sst_stack **out);
void sst_stack_free(sst_stack *s);

void sst_stack_set_skip_tombstones(sst_stack *s, int on);
int sst_stack_seek_first(sst_stack *s);
int sst_stack_seek(sst_stack *s, const void *key, size_t key_len);
int sst_stack_range(sst_stack *s, const void *from, size_t from_len,
                    const void *to, size_t to_len);
int sst_stack_prefix(sst_stack *s, const void *prefix, size_t prefix_len);
int sst_stack_seek_position(sst_stack *s, uint64_t pos);
int sst_stack_next(sst_stack *s);

int sst_stack_valid(const sst_stack *s);
int sst_stack_status(const sst_stack *s);
/* REQUIRES: sst_stack_valid(s). Valid until the stack moves. */
const sst_entry *sst_stack_entry(const sst_stack *s);

#endif
