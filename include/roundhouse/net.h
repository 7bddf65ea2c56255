/* Socket helpers in the anet style: setup calls return 0/-1 with a message in an err buffer; the
 * per-request ones return -1 with errno set. */
#ifndef RH_NET_H
#define RH_NET_H

#include <stddef.h>
#include <sys/socket.h>

#include "roundhouse/config.h"

/* A non-blocking listening socket on <addr> with SO_REUSEPORT (one per worker: the kernel spreads
 * connections across them), SO_REUSEADDR and IPV6_V6ONLY for v6 addresses. Returns the fd or -1. */
int rh_net_listen(const struct rh_sockaddr *addr, int backlog, char *err, size_t errlen);

/* Fails with a message when something already listens on <addr>. SO_REUSEPORT would otherwise let
 * a second roundhouse (or anything run by the same user with SO_REUSEPORT) share the port silently
 * and take half the connections. Main thread, before the workers' listeners exist. */
int rh_net_check_port_free(const struct rh_sockaddr *addr, char *err, size_t errlen);

/* Starts a non-blocking connect to <addr>. Returns the fd with *in_progress set when the result comes
 * later (EPOLLOUT, then SO_ERROR), or -1 with errno (ECONNREFUSED can come at once on loopback). */
int rh_net_connect(const struct rh_sockaddr *addr, int *in_progress);

/* The pending error of a socket whose connect finished (0 = connected). */
int rh_net_socket_error(int fd);

/* Numeric host of <sa> ("127.0.0.1", "::1") into <out>; returns its length (0 on failure). */
size_t rh_net_host_text(const struct sockaddr *sa, char *out, size_t outlen);

#endif
