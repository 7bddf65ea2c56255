/* The histogram bucket bounds (see stats.h): a latency spread from a fast keep-alive exchange on
 * loopback to a slow backend. */
#include "roundhouse/stats.h"

const uint64_t rh_hist_bounds_us[RH_HIST_BOUNDS] = {
	100,    250,    500,     1000,    2500,    5000,    10000,   25000,
	50000,  100000, 250000,  500000,  1000000, 2500000, 5000000, 10000000,
};
