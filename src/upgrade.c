/* Handing listening sockets to a new process (see upgrade.h). */
#include "roundhouse/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_FDS 4096      /* listeners one process may hand over */
#define FETCH_MS 10000    /* the old process answers within this, or the upgrade fails */

enum { REC_FD, REC_END, REC_READY };

/* One SOCK_SEQPACKET message; REC_FD carries one descriptor (SCM_RIGHTS). */
struct record {
	uint8_t type;
	uint8_t kind; /* enum rh_inherited_kind */
	char addr[RH_ADDR_TEXT_LEN];
};

static socklen_t
address_of(pid_t pid, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* abstract: sun_path[0] == 0; the length, not a NUL, ends the name */
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "roundhouse-upgrade-%ld", (long)pid);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int
rh_upgrade_listen(char *err, size_t errlen)
{
	struct sockaddr_un sa;
	socklen_t len = address_of(getpid(), &sa);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1 || bind(fd, (struct sockaddr *)&sa, len) == -1 || listen(fd, 4) == -1) {
		snprintf(err, errlen, "upgrade socket @%s: %s", sa.sun_path + 1, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

/* Sends one record (with <fd> when >= 0). 0 or -1. */
static int
send_record(int s, const struct record *r, int fd)
{
	struct iovec iov = {(void *)r, sizeof(*r)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(s, &msg, MSG_NOSIGNAL);
		if (n == (ssize_t)sizeof(*r))
			return 0;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			struct pollfd p = {.fd = s, .events = POLLOUT};
			if (poll(&p, 1, FETCH_MS) == 1)
				continue;
			errno = ETIMEDOUT;
		}
		return -1;
	}
}

/* Receives one record (and its descriptor into *<fd>, else -1), waiting at most FETCH_MS. */
static int
recv_record(int s, struct record *r, int *fd)
{
	struct iovec iov = {r, sizeof(*r)};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;

	*fd = -1;
	for (;;) {
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				     .msg_controllen = sizeof(u.buf)};
		ssize_t n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			struct pollfd p = {.fd = s, .events = POLLIN};
			if (poll(&p, 1, FETCH_MS) == 1)
				continue;
			errno = ETIMEDOUT;
			return -1;
		}
		if (n == -1)
			return -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
			    c->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(fd, CMSG_DATA(c), sizeof(int));
		if (n != (ssize_t)sizeof(*r) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			if (*fd >= 0)
				close(*fd);
			*fd = -1;
			errno = n == 0 ? ECONNRESET : EPROTO;
			return -1;
		}
		r->addr[sizeof(r->addr) - 1] = '\0';
		return 0;
	}
}

int
rh_upgrade_serve(int lfd, const struct rh_inherited *fds, size_t n, char *err, size_t errlen)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	int s = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (s == -1) {
		snprintf(err, errlen, "accept: %s", strerror(errno));
		return -1;
	}
	/* the abstract namespace has no file permissions: only this user (or root) gets the sockets */
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == -1 ||
	    (cred.uid != getuid() && cred.uid != 0)) {
		snprintf(err, errlen, "refused a process of uid %ld (not this user)", (long)cred.uid);
		close(s);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct record r = {.type = REC_FD, .kind = (uint8_t)fds[i].kind};
		memcpy(r.addr, fds[i].addr, sizeof(r.addr));
		if (send_record(s, &r, fds[i].fd) == -1) {
			snprintf(err, errlen, "sending the listeners to pid %ld: %s", (long)cred.pid, strerror(errno));
			close(s);
			return -1;
		}
	}
	struct record end = {.type = REC_END};
	if (send_record(s, &end, -1) == -1) {
		snprintf(err, errlen, "sending the listeners to pid %ld: %s", (long)cred.pid, strerror(errno));
		close(s);
		return -1;
	}
	return s;
}

int
rh_upgrade_wait_ready(int cfd)
{
	struct record r;
	ssize_t n = recv(cfd, &r, sizeof(r), MSG_DONTWAIT);

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return n == (ssize_t)sizeof(r) && r.type == REC_READY ? 1 : -1;
}

int
rh_upgrade_fetch(pid_t old, struct rh_inherited **fds, size_t *n, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	socklen_t len = address_of(old, &sa);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct rh_inherited *v = NULL;
	size_t count = 0, cap = 0;

	*fds = NULL;
	*n = 0;
	if (s == -1 || connect(s, (struct sockaddr *)&sa, len) == -1) {
		snprintf(err, errlen, "--upgrade-from %ld: cannot reach it (@%s): %s%s", (long)old,
			 sa.sun_path + 1, strerror(errno),
			 errno == ECONNREFUSED ? " (is it a roundhouse process with this pid?)" : "");
		goto fail;
	}
	/* the abstract name is anybody's to bind: only a process of this user (or root), with the
	 * pid asked for, is trusted with our listeners' places */
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == -1 || cred.pid != old ||
	    (cred.uid != getuid() && cred.uid != 0)) {
		snprintf(err, errlen, "--upgrade-from %ld: the socket @%s belongs to pid %ld uid %ld, not "
				      "to that process", (long)old, sa.sun_path + 1, (long)cred.pid, (long)cred.uid);
		goto fail;
	}
	/* non-blocking from here: recv_record waits at most FETCH_MS for each message */
	fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
	for (;;) {
		struct record r;
		int fd;
		if (recv_record(s, &r, &fd) == -1) {
			snprintf(err, errlen, "--upgrade-from %ld: receiving its listeners: %s", (long)old,
				 strerror(errno));
			goto fail;
		}
		if (r.type == REC_END) {
			if (fd >= 0)
				close(fd);
			break;
		}
		if (r.type != REC_FD || fd < 0 || r.kind > RH_INHERITED_ADMIN || count == MAX_FDS) {
			if (fd >= 0)
				close(fd);
			snprintf(err, errlen, "--upgrade-from %ld: unexpected message", (long)old);
			goto fail;
		}
		if (count == cap) {
			size_t c = cap ? cap * 2 : 16;
			struct rh_inherited *g = realloc(v, c * sizeof(*g));
			if (!g) {
				close(fd);
				snprintf(err, errlen, "--upgrade-from: out of memory");
				goto fail;
			}
			v = g;
			cap = c;
		}
		v[count] = (struct rh_inherited){.kind = r.kind, .fd = fd};
		memcpy(v[count].addr, r.addr, sizeof(r.addr));
		count++;
	}
	*fds = v;
	*n = count;
	return s;
fail:
	for (size_t i = 0; i < count; i++)
		close(v[i].fd);
	free(v);
	if (s != -1)
		close(s);
	return -1;
}

int
rh_upgrade_ready(int cfd)
{
	struct record r = {.type = REC_READY};
	int rc = send_record(cfd, &r, -1);

	close(cfd);
	return rc;
}
