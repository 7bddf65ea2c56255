#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "roundhouse/net.h"

int
rh_net_listen(const struct rh_sockaddr *addr, int backlog, char *err, size_t errlen)
{
	int one = 1;
	int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1) {
		snprintf(err, errlen, "listen %s: socket: %s", addr->text, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    (addr->ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)) {
		snprintf(err, errlen, "listen %s: setsockopt: %s", addr->text, strerror(errno));
		goto fail;
	}
	/* wake us for a connection only once its first bytes arrived (the request, for HTTP): the
	 * accept and the first read then happen in one loop turn. A client that sends nothing is
	 * accepted anyway after about this many seconds and meets client_header as usual. */
	int defer_s = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof(defer_s));
	if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) == -1) {
		snprintf(err, errlen, "listen %s: bind: %s", addr->text, strerror(errno));
		goto fail;
	}
	if (listen(fd, backlog) == -1) {
		snprintf(err, errlen, "listen %s: listen: %s", addr->text, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int
rh_net_check_port_free(const struct rh_sockaddr *addr, char *err, size_t errlen)
{
	int one = 1;
	int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd == -1) {
		snprintf(err, errlen, "listen %s: socket: %s", addr->text, strerror(errno));
		return -1;
	}
	/* SO_REUSEADDR only: connections in TIME_WAIT do not count, a listener does */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) == -1) {
		int e = errno;
		snprintf(err, errlen, "listen %s: %s%s", addr->text, strerror(e),
			 e == EADDRINUSE ? " (is another roundhouse or server listening there?)" : "");
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
rh_net_connect(const struct rh_sockaddr *addr, int *in_progress)
{
	int one = 1;
	int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	*in_progress = 0;
	if (fd == -1)
		return -1;
	/* heads and small bodies go out in one writev; Nagle would only add latency */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) == 0)
		return fd;
	if (errno == EINPROGRESS) {
		*in_progress = 1;
		return fd;
	}
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
rh_net_socket_error(int fd)
{
	int e = 0;
	socklen_t len = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
		return errno;
	return e;
}

size_t
rh_net_host_text(const struct sockaddr *sa, char *out, size_t outlen)
{
	const void *a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		return 0;
	if (!inet_ntop(sa->sa_family, a, out, (socklen_t)outlen))
		return 0;
	return strlen(out);
}
