/* struct rh_sockaddr: an address and its numeric text (see sockaddr.h). */
#include "roundhouse/sockaddr.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

int
rh_sockaddr_set(struct rh_sockaddr *sa, const struct sockaddr *addr, socklen_t len)
{
	char host[NI_MAXHOST];
	char serv[NI_MAXSERV];
	int n;

	if (len > sizeof(sa->ss))
		return -1;
	memset(sa, 0, sizeof(*sa));
	memcpy(&sa->ss, addr, len);
	sa->len = len;
	if (getnameinfo(addr, len, host, sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return -1;
	if (addr->sa_family == AF_INET6)
		n = snprintf(sa->text, sizeof(sa->text), "[%s]:%s", host, serv);
	else
		n = snprintf(sa->text, sizeof(sa->text), "%s:%s", host, serv);
	return n < 0 || (size_t)n >= sizeof(sa->text) ? -1 : 0;
}
