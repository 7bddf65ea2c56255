/* A socket address as the config, the resolver and the backends keep it: the address itself and its
 * numeric text. Its own header so that the resolver, below the config loader, needs nothing else of
 * config.h. */
#ifndef RH_SOCKADDR_H
#define RH_SOCKADDR_H

#include <sys/socket.h>

#define RH_ADDR_TEXT_LEN 80 /* "[v6]:port" or "name:port" with room to spare */

struct rh_sockaddr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[RH_ADDR_TEXT_LEN]; /* numeric form, "127.0.0.1:8081" or "[::1]:8081" */
};

/* Fills <sa> with <addr> (<len> bytes) and its numeric text. 0, or -1 when it does not fit or
 * cannot be printed. Any thread. */
int rh_sockaddr_set(struct rh_sockaddr *sa, const struct sockaddr *addr, socklen_t len);

#endif
