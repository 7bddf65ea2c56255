/* I/O buffers with cursors, in two sizes, recycled through per-worker free lists so the request
 * path never calls malloc once the worker has warmed up. A connection reading a request head starts
 * with a small buffer and moves to a large one only when the head outgrows it or a body is to be
 * streamed: a client that opens a connection and sends a few bytes costs about 1 KiB, not 16. */
#ifndef RH_BUF_H
#define RH_BUF_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define RH_BUF_SIZE 16384      /* large buffer's data: also the largest request or response head */
#define RH_BUF_SMALL_ALLOC 1024 /* a small buffer's whole allocation, header included (nginx starts
				  * a head in 1 KiB too) */
#define RH_BUF_BODY_SIZE 65536  /* a body buffer: a response body larger than a large buffer streams
				  * through one, so a 64 KiB body takes one read and one write, not
				  * four of each */

struct rh_buf {
	size_t start; /* first byte not yet consumed */
	size_t end;   /* one past the last byte read */
	uint32_t cap; /* bytes in data[] */
	struct rh_buf *next_free;
	char data[];
};

#define RH_BUF_SMALL (RH_BUF_SMALL_ALLOC - sizeof(struct rh_buf)) /* a small buffer's data */

struct rh_buf_list {
	struct rh_buf *free;
	size_t n_free;
	size_t max_free; /* beyond this, released buffers go back to the allocator */
};

struct rh_buf_pool {
	struct rh_buf_list large, small, body;
};

/* A large (RH_BUF_SIZE) buffer with start == end == 0, or NULL when memory ran out. Owning worker
 * thread only. */
struct rh_buf *rh_buf_get(struct rh_buf_pool *pool);

/* A body (RH_BUF_BODY_SIZE) buffer, likewise. */
struct rh_buf *rh_buf_get_body(struct rh_buf_pool *pool);

/* A small (RH_BUF_SMALL) buffer, likewise. */
struct rh_buf *rh_buf_get_small(struct rh_buf_pool *pool);

/* A buffer of the smallest class that holds <need> bytes, or NULL (also when none is that large). */
struct rh_buf *rh_buf_get_fit(struct rh_buf_pool *pool, size_t need);

/* Returns <buf> to <pool> (or frees it). Accepts NULL. Owning worker thread only. */
void rh_buf_put(struct rh_buf_pool *pool, struct rh_buf *buf);

/* Frees every buffer kept in <pool>. */
void rh_buf_pool_finish(struct rh_buf_pool *pool);

static inline size_t rh_buf_len(const struct rh_buf *b) { return b->end - b->start; }
static inline size_t rh_buf_room(const struct rh_buf *b) { return b->cap - b->end; }

/* Moves the unconsumed bytes to the front so there is room to read after them. */
void rh_buf_compact(struct rh_buf *b);

/* Replaces the small buffer *<bp> by a large one holding its unconsumed bytes (at the front). Returns
 * false when memory ran out (*<bp> is then unchanged). A large or body buffer is left as it is. */
bool rh_buf_grow(struct rh_buf_pool *pool, struct rh_buf **bp);

#endif
