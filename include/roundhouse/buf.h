/* Fixed-capacity I/O buffers with cursors, recycled through a per-worker free list so the request path
 * never calls malloc once the worker has warmed up. Each buffer carries the iovec array used to write
 * its bytes out (head rewriting produces several spans per message). */
#ifndef RH_BUF_H
#define RH_BUF_H

#include <stddef.h>
#include <sys/uio.h>

#define RH_BUF_SIZE 16384 /* also the largest request or response head accepted */
#define RH_BUF_IOV 224    /* spans of one rewritten head: 2 per removed header line at most */

struct rh_buf {
	size_t start; /* first byte not yet consumed */
	size_t end;   /* one past the last byte read */
	struct rh_buf *next_free;
	struct iovec iov[RH_BUF_IOV];
	char data[RH_BUF_SIZE];
};

struct rh_buf_pool {
	struct rh_buf *free;
	size_t n_free;
	size_t max_free; /* beyond this, released buffers go back to the allocator */
};

/* A buffer with start == end == 0, or NULL when memory ran out. Owning worker thread only. */
struct rh_buf *rh_buf_get(struct rh_buf_pool *pool);

/* Returns <buf> to <pool> (or frees it). Accepts NULL. Owning worker thread only. */
void rh_buf_put(struct rh_buf_pool *pool, struct rh_buf *buf);

/* Frees every buffer kept in <pool>. */
void rh_buf_pool_finish(struct rh_buf_pool *pool);

static inline size_t rh_buf_len(const struct rh_buf *b) { return b->end - b->start; }
static inline size_t rh_buf_room(const struct rh_buf *b) { return RH_BUF_SIZE - b->end; }

/* Moves the unconsumed bytes to the front so there is room to read after them. */
void rh_buf_compact(struct rh_buf *b);

#endif
