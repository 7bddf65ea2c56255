/* Binary upgrade without a refused connection: the running process hands its listening sockets to a
 * new one, as nginx's binary upgrade and HAProxy's -x do.
 *
 * With SO_REUSEPORT alone a new process could bind beside the old one, but each socket of the group
 * has its own accept queue, and the connections waiting in the old process's queues are reset when
 * it closes its sockets. Handing over the sockets themselves avoids that: the new process accepts on
 * the very sockets the old one did, so when the old one stops accepting (and closes its copies)
 * nothing is lost: what waits in a queue is accepted by the new process.
 *
 *   old (running)                              new (roundhouse -c FILE --upgrade-from OLDPID)
 *   listens on "\0roundhouse-upgrade-OLDPID"
 *                                       <----  connects (same user, or root: SO_PEERCRED)
 *   sends every listener: address, kind, fd  ---->
 *                                              starts its workers on them (binds what is new)
 *                                       <----  "ready" (once it serves)
 *   stops accepting, drains (shutdown), exits
 *
 * The socket is in the abstract namespace (no file to clean up, none to protect under systemd's
 * ProtectSystem) and SOCK_SEQPACKET (one record per message). If the new process fails before it
 * says ready, the old one logs it and goes on serving. SIGUSR2 makes the running process start the
 * new one itself (fork + exec of the same path with --upgrade-from). */
#ifndef RH_UPGRADE_H
#define RH_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "roundhouse/config.h"

enum rh_inherited_kind {
	RH_INHERITED_LISTEN,     /* [server] listen */
	RH_INHERITED_LISTEN_TLS, /* [server] listen_tls */
	RH_INHERITED_ADMIN,      /* [admin] listen */
};

/* A listening socket handed over. */
struct rh_inherited {
	enum rh_inherited_kind kind;
	char addr[RH_ADDR_TEXT_LEN]; /* as the old process's config had it, numeric: "127.0.0.1:6188" */
	int fd;
	bool taken; /* the new process uses it */
};

/* The old side: the listening socket for new processes, non-blocking; -1 with <err>. */
int rh_upgrade_listen(char *err, size_t errlen);

/* The old side, when <lfd> is readable: accepts a new process, checks it runs as this user (or
 * root), and sends it <fds>[0..<n>). Returns the connection (to wait on for "ready"), or -1 with
 * <err> (nothing was handed over, or the new process is gone). */
int rh_upgrade_serve(int lfd, const struct rh_inherited *fds, size_t n, char *err, size_t errlen);

/* The old side, when the connection is readable: 1 the new process is ready, 0 nothing yet, -1 it
 * went away (failed). */
int rh_upgrade_wait_ready(int cfd);

/* The new side: connects to process <old> and receives its listeners into a new array (*<fds>,
 * *<n>; free it with free() after closing what was not taken). Returns the connection, or -1 with
 * <err>. */
int rh_upgrade_fetch(pid_t old, struct rh_inherited **fds, size_t *n, char *err, size_t errlen);

/* The new side, once it serves: tells the old one to stop, and closes <cfd>. 0 or -1. */
int rh_upgrade_ready(int cfd);

#endif
