/* xmlstream_fuzzer.c - libFuzzer target for the XMPP stream parser.
 *
 * The first byte chooses the chunk size the rest is fed in (so every split
 * point gets exercised, as the unit tests do), the second how the target
 * reacts to a stanza: keep going, stop the parser (as STARTTLS does) and
 * continue from the unconsumed byte, or reset and start a new document.
 * The same byte makes stanzas whole, shallow, or taken as head and bytes
 * (on_raw_stanza, declining some). Every stanza is serialized
 * again, which exercises xmlnode.c too, and the bytes xml_stream_raw_stanza
 * hands out must parse alone, as one stanza, in a stream that declares
 * nothing but its default namespace: that is how they are forwarded. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"
#include "xmlnode.h"
#include "xmlstream.h"

struct fuzz_ctx {
	struct xml_stream *xs;
	unsigned mode;
	unsigned stanzas;
};

static void
on_start(void *arg, const struct xml_node *hdr)
{
	struct strbuf sb;

	strbuf_init(&sb, 1 << 20);
	(void)xml_serialize(hdr, NS_SERVER, &sb);
	strbuf_free(&sb);
}

static void
count_stanza(void *arg, struct xml_node *n)
{
	(*(unsigned *)arg)++;
	xml_node_free(n);
}

static void
raw_must_stand_alone(const char *raw, size_t len)
{
	static const char hdr[] = "<stream:stream xmlns='jabber:component:accept' "
	    "xmlns:stream='http://etherx.jabber.org/streams'>";
	static const struct xml_stream_callbacks cb = { .on_stanza = count_stanza };
	struct xml_stream_limits lim = { len + 1, 32, 32, 256, sizeof(hdr) };
	unsigned n = 0;
	struct xml_stream *xs = xml_stream_new(&lim, &cb, &n);

	if (xs == NULL)
		return;
	if (xml_stream_feed(xs, hdr, sizeof(hdr) - 1, NULL) != XS_FEED_OK ||
	    xml_stream_feed(xs, raw, len, NULL) != XS_FEED_OK || n != 1)
		abort();
	xml_stream_free(xs);
}

static void
on_stanza(void *arg, struct xml_node *n)
{
	struct fuzz_ctx *f = arg;
	struct strbuf sb;
	struct xml_node *copy;
	const char *raw;
	size_t raw_len;

	if ((raw = xml_stream_raw_stanza(f->xs, &raw_len)) != NULL)
		raw_must_stand_alone(raw, raw_len);

	strbuf_init(&sb, 1 << 20);
	(void)xml_serialize(n, NS_SERVER, &sb);
	strbuf_free(&sb);
	if ((copy = xml_node_copy(n)) != NULL)
		xml_node_free(copy);
	xml_node_free(n);
	if (f->mode == 1 && (++f->stanzas % 3) == 0)
		xml_stream_stop(f->xs);
}

static bool
on_raw_stanza(void *arg, const struct xml_stanza_head *h, const char *raw, size_t len)
{
	struct fuzz_ctx *f = arg;

	if (h->ns == NULL || h->name == NULL || raw == NULL)
		abort();
	raw_must_stand_alone(raw, len);
	if ((++f->stanzas % 4) == 0)
		return false;	/* to on_stanza, parsed from the bytes */
	if (f->mode == 1 && (f->stanzas % 3) == 0)
		xml_stream_stop(f->xs);
	return true;
}

static void
on_end(void *arg)
{
}

static void
on_error(void *arg, enum xml_stream_error err, const char *detail)
{
	(void)xml_stream_error_condition(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct xml_stream_callbacks cb = { on_start, on_stanza, NULL, on_end, on_error };
	static const struct xml_stream_callbacks head_cb = {
		on_start, on_stanza, on_raw_stanza, on_end, on_error
	};
	struct xml_stream_limits lim = { 4096, 32, 32, 256, 1024 };
	struct fuzz_ctx f = { NULL, 0, 0 };
	size_t chunk, off = 0, consumed;
	enum xml_feed_result r;

	if (size < 2)
		return 0;
	chunk = (size_t)data[0] % 64 + 1;
	f.mode = data[1] % 3;
	if ((f.xs = xml_stream_new(&lim, (data[1] / 3) % 3 == 2 ? &head_cb : &cb, &f)) == NULL)
		return 0;
	xml_stream_set_shallow(f.xs, (data[1] / 3) % 3 >= 1);
	data += 2;
	size -= 2;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;

		r = xml_stream_feed(f.xs, (const char *)data + off, n, &consumed);
		if (r == XS_FEED_ERROR) {
			if (f.mode != 2 || xml_stream_reset(f.xs) == -1)
				break;
			off += n;
			continue;
		}
		if (r == XS_FEED_STOPPED) {
			/* continue from the first unconsumed byte */
			off += consumed;
			continue;
		}
		off += n;
	}
	xml_stream_free(f.xs);
	return 0;
}
