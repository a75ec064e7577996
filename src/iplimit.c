/* iplimit.c - per-address connection limits (open addressing table). */
#include "config.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "iplimit.h"
#include "log.h"
#include "util.h"

#define IPLIMIT_SLOTS	8192	/* addresses tracked at once per worker */
#define IPLIMIT_PROBES	16

struct ip_entry {
	struct iplimit_key key;
	bool used;
	unsigned streams;	/* open connections */
	double tokens;		/* new connections still allowed now */
	uint64_t refill_ms;	/* when tokens were last topped up */
};

static struct ip_entry table[IPLIMIT_SLOTS];

void
iplimit_key_from(const struct sockaddr *sa, struct iplimit_key *k)
{
	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET6) {
		memcpy(k->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET) {
		k->addr[10] = 0xff;
		k->addr[11] = 0xff;
		memcpy(k->addr + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

static uint32_t
key_hash(const struct iplimit_key *k)
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	size_t i;

	for (i = 0; i < sizeof(k->addr); i++)
		h = (h ^ k->addr[i]) * 16777619u;
	return h;
}

/* An entry is free for reuse once it holds no connection and its bucket
 * has had time to refill (a second is enough at any rate). */
static bool
entry_idle(const struct ip_entry *e, uint64_t now)
{
	return !e->used || (e->streams == 0 && now - e->refill_ms >= 1000);
}

static struct ip_entry *
lookup(const struct iplimit_key *k, bool create, uint64_t now)
{
	uint32_t h = key_hash(k);
	struct ip_entry *spare = NULL;
	size_t i;

	for (i = 0; i < IPLIMIT_PROBES; i++) {
		struct ip_entry *e = &table[(h + i) % IPLIMIT_SLOTS];
		if (e->used && memcmp(&e->key, k, sizeof(*k)) == 0)
			return e;
		if (spare == NULL && entry_idle(e, now))
			spare = e;
	}
	if (!create || spare == NULL)
		return NULL;
	memset(spare, 0, sizeof(*spare));
	spare->key = *k;
	spare->used = true;
	spare->refill_ms = now;
	spare->tokens = -1;	/* filled on first use */
	return spare;
}

bool
iplimit_admit(const struct iplimit_key *k, unsigned max_streams,
    unsigned max_new_per_sec, const char **why)
{
	uint64_t now = util_now_mono_ms();
	struct ip_entry *e = lookup(k, true, now);

	if (e == NULL)
		return true;	/* table crowded: fail open rather than refuse everyone */
	if (e->tokens < 0)
		e->tokens = max_new_per_sec;
	e->tokens += (double)(now - e->refill_ms) * max_new_per_sec / 1000.0;
	if (e->tokens > max_new_per_sec)
		e->tokens = max_new_per_sec;
	e->refill_ms = now;
	if (e->streams >= max_streams) {
		*why = "too many streams from this address";
		return false;
	}
	if (e->tokens < 1.0) {
		*why = "too many new connections per second from this address";
		return false;
	}
	e->tokens -= 1.0;
	e->streams++;
	return true;
}

void
iplimit_release(const struct iplimit_key *k)
{
	struct ip_entry *e = lookup(k, false, util_now_mono_ms());

	if (e != NULL && e->streams > 0)
		e->streams--;
}
