/* libFuzzer target: the DNS answer parser of the nameserver path (rh_resolve_parse_answer), on the
 * input as a DNS message. The first byte of the input picks the query type (its low bit: A or AAAA);
 * the rest is the message, parsed as an answer for "x.test" (the seeds use that name).
 *  - no crash, no leak (LSan), no read outside the input;
 *  - 0 or -1, and a failure says why;
 *  - every address is IPv4 or IPv6 with its port, its text printable and NUL-terminated, none
 *    twice, at most RH_RESOLVE_MAX_ADDRS. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "roundhouse/resolver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rh_sockaddr *v = NULL;
	size_t n = 0;
	char why[RH_RESOLVE_WHY_LEN];
	int rc;

	if (size < 1)
		return 0;
	memset(why, 0x55, sizeof(why));
	rc = rh_resolve_parse_answer(data + 1, size - 1, "x.test", (data[0] & 1) ? 28 : 1, 8080, &v, &n, why,
				     sizeof(why));
	CHECK(rc == 0 || rc == -1);
	if (rc == -1)
		CHECK(strnlen(why, sizeof(why)) < sizeof(why) && why[0] != '\0');
	CHECK(n <= RH_RESOLVE_MAX_ADDRS);
	CHECK((n == 0) == (v == NULL));
	for (size_t i = 0; i < n; i++) {
		size_t len = strnlen(v[i].text, sizeof(v[i].text));

		CHECK(len > 0 && len < sizeof(v[i].text));
		CHECK(v[i].ss.ss_family == ((data[0] & 1) ? AF_INET6 : AF_INET));
		CHECK(len >= 5 && strcmp(v[i].text + len - 5, ":8080") == 0);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(v[i].text, v[j].text) != 0);
	}
	CHECK(rh_resolver_same_addrs(v, n, v, n));
	free(v);
	return 0;
}
