#include <stdlib.h>
#include <string.h>

#include "roundhouse/buf.h"

struct rh_buf *
rh_buf_get(struct rh_buf_pool *pool)
{
	struct rh_buf *b = pool->free;

	if (b) {
		pool->free = b->next_free;
		pool->n_free--;
	} else {
		/* iov and data are written before they are read: no need to zero 19 KiB */
		b = malloc(sizeof(*b));
		if (!b)
			return NULL;
	}
	b->start = b->end = 0;
	b->next_free = NULL;
	return b;
}

void
rh_buf_put(struct rh_buf_pool *pool, struct rh_buf *b)
{
	if (!b)
		return;
	if (pool->n_free >= pool->max_free) {
		free(b);
		return;
	}
	b->next_free = pool->free;
	pool->free = b;
	pool->n_free++;
}

void
rh_buf_pool_finish(struct rh_buf_pool *pool)
{
	while (pool->free) {
		struct rh_buf *b = pool->free;
		pool->free = b->next_free;
		free(b);
	}
	pool->n_free = 0;
}

void
rh_buf_compact(struct rh_buf *b)
{
	size_t len = rh_buf_len(b);

	if (b->start == 0)
		return;
	if (len)
		memmove(b->data, b->data + b->start, len);
	b->start = 0;
	b->end = len;
}
