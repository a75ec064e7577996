/* stats.c - counters batched per worker. */
#include "config.h"

#include <string.h>

#include "log.h"
#include "stats.h"
#include "store.h"

static const char *const stat_names[ST_COUNT] = {
	[ST_STREAMS_IN] = "streams_in",
	[ST_STREAMS_OUT] = "streams_out",
	[ST_DIALBACK_ATTEMPTS] = "dialback_attempts",
	[ST_DIALBACK_VALID] = "dialback_valid",
	[ST_DIALBACK_INVALID] = "dialback_invalid",
	[ST_DIALBACK_ERRORS] = "dialback_errors",
	[ST_DIALBACK_TIMEOUTS] = "dialback_timeouts",
	[ST_VERIFY_ANSWERED] = "verify_answered",
	[ST_STANZAS_ROUTED] = "stanzas_routed",
	[ST_STANZAS_BOUNCED] = "stanzas_bounced",
	[ST_STANZAS_QUEUED] = "stanzas_queued",
	[ST_BYTES_IN] = "bytes_in",
	[ST_BYTES_OUT] = "bytes_out",
	[ST_COMPONENTS] = "components",
	[ST_REFUSED] = "connections_refused",
	[ST_STREAM_ERRORS] = "stream_errors",
	[ST_LIMITS_HIT] = "limits_hit",
};

static uint64_t pending[ST_COUNT];

void
stats_add(enum stat_id id, uint64_t n)
{
	if (id < ST_COUNT)
		pending[id] += n;
}

void
stats_flush(struct store *st, int slot)
{
	const char *names[ST_COUNT];
	uint64_t deltas[ST_COUNT];
	size_t i, n = 0;
	int rc;

	for (i = 0; i < ST_COUNT; i++) {
		if (pending[i] == 0)
			continue;
		names[n] = stat_names[i];
		deltas[n] = pending[i];
		n++;
	}
	if (n == 0)
		return;
	rc = store_stats_add(st, slot, names, deltas, n);
	if (rc != STORE_OK) {
		/* keep them for the next try */
		log_debug("stats: not flushed: %s", store_strerror(rc));
		return;
	}
	memset(pending, 0, sizeof(pending));
}
