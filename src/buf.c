#include <stdlib.h>
#include <string.h>

#include "roundhouse/buf.h"

static struct rh_buf *
list_get(struct rh_buf_list *l, uint32_t cap)
{
	struct rh_buf *b = l->free;

	if (b) {
		l->free = b->next_free;
		l->n_free--;
	} else {
		/* data is written before it is read: no need to zero it */
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->cap = cap;
	}
	b->start = b->end = 0;
	b->next_free = NULL;
	return b;
}

struct rh_buf *
rh_buf_get(struct rh_buf_pool *pool)
{
	return list_get(&pool->large, RH_BUF_SIZE);
}

struct rh_buf *
rh_buf_get_body(struct rh_buf_pool *pool)
{
	return list_get(&pool->body, RH_BUF_BODY_SIZE);
}

struct rh_buf *
rh_buf_get_small(struct rh_buf_pool *pool)
{
	return list_get(&pool->small, RH_BUF_SMALL);
}

struct rh_buf *
rh_buf_get_fit(struct rh_buf_pool *pool, size_t need)
{
	if (need <= RH_BUF_SMALL)
		return rh_buf_get_small(pool);
	if (need <= RH_BUF_SIZE)
		return rh_buf_get(pool);
	return NULL;
}

void
rh_buf_put(struct rh_buf_pool *pool, struct rh_buf *b)
{
	if (!b)
		return;
	struct rh_buf_list *l = b->cap == RH_BUF_SIZE	   ? &pool->large
				: b->cap == RH_BUF_BODY_SIZE ? &pool->body
							     : &pool->small;
	if (l->n_free >= l->max_free) {
		free(b);
		return;
	}
	b->next_free = l->free;
	l->free = b;
	l->n_free++;
}

static void
list_finish(struct rh_buf_list *l)
{
	while (l->free) {
		struct rh_buf *b = l->free;
		l->free = b->next_free;
		free(b);
	}
	l->n_free = 0;
}

void
rh_buf_pool_finish(struct rh_buf_pool *pool)
{
	list_finish(&pool->large);
	list_finish(&pool->small);
	list_finish(&pool->body);
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

bool
rh_buf_grow(struct rh_buf_pool *pool, struct rh_buf **bp)
{
	struct rh_buf *small = *bp, *large;

	if (small->cap >= RH_BUF_SIZE) /* a large or a body buffer */
		return true;
	if (!(large = rh_buf_get(pool)))
		return false;
	large->end = rh_buf_len(small);
	memcpy(large->data, small->data + small->start, large->end);
	rh_buf_put(pool, small);
	*bp = large;
	return true;
}
