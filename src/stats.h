/* stats.h - per-worker counters, kept in memory and added to the store's
 * stats database once a second (never a write per stanza). Names are the
 * ones dialbackd-dbtool stats shows. */
#ifndef DIALBACKD_STATS_H
#define DIALBACKD_STATS_H

#include <stdint.h>

enum stat_id {
	ST_STREAMS_IN,		/* inbound s2s streams accepted */
	ST_STREAMS_OUT,		/* outbound s2s streams connected */
	ST_DIALBACK_ATTEMPTS,	/* db:result sent or received */
	ST_DIALBACK_VALID,
	ST_DIALBACK_INVALID,
	ST_DIALBACK_ERRORS,	/* dialback errors: unreachable authority, peer errors */
	ST_DIALBACK_TIMEOUTS,
	ST_VERIFY_ANSWERED,	/* db:verify answered as authoritative server */
	ST_STANZAS_ROUTED,
	ST_STANZAS_BOUNCED,
	ST_STANZAS_QUEUED,
	ST_BYTES_IN,
	ST_BYTES_OUT,
	ST_COMPONENTS,		/* component attachments */
	ST_REFUSED,		/* connections refused at accept (limits) */
	ST_STREAM_ERRORS,	/* stream errors we sent */
	ST_LIMITS_HIT,		/* a limit refused something: stanza size, depth, pending, output */
	ST_COUNT
};

struct store;

void stats_add(enum stat_id id, uint64_t n);
#define stats_inc(id) stats_add((id), 1)
/* Adds what was counted since the last flush to the store. */
void stats_flush(struct store *st, int slot);

#endif
