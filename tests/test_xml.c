/* test_xml.c - the element tree, the serializer and the stream parser.
 * Real s2s streams are fed at every chunk size from 1 byte to their whole
 * length and must give the same events each time; hostile input must be
 * refused with the right RFC 6120 stream error condition. */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_main.h"
#include "util.h"
#include "xmlnode.h"
#include "xmlstream.h"

static const struct xml_stream_limits test_limits = {
	.max_stanza_bytes = 65536,
	.max_depth = 32,
	.max_attrs = 32,
	.max_children = 256,
	.max_header_bytes = 4096,
};

/* ---- event recorder -------------------------------------------------- */

struct rec {
	struct strbuf		 log;		/* one line per event */
	struct xml_stream	*xs;
	bool			 stop_all;	/* stop after every event */
	const char		*stop_on;	/* stop after a stanza of this name */
	bool			 free_on_stanza;
	bool			 free_on_error;
	bool			 keep;		/* keep the first stanza in kept */
	bool			 log_raw;	/* log xml_stream_raw_stanza too */
	bool			 decline_raw;	/* on_raw_stanza declines every stanza */
	struct xml_node		*kept;
	int			 nerr;
	enum xml_stream_error	 err;
	int			 reset_rc;	/* xml_stream_reset from a callback */
};

static void
log_str(struct rec *r, const char *s)
{
	if (strbuf_appends(&r->log, s) == -1)
		abort();
}

static void
rec_start(void *ctx, const struct xml_node *h)
{
	struct rec *r = ctx;
	size_t i;

	log_str(r, "S ");
	if (h->prefix != NULL) {
		log_str(r, h->prefix);
		log_str(r, ":");
	}
	log_str(r, h->name);
	log_str(r, "{");
	log_str(r, h->ns);
	log_str(r, "}");
	for (i = 0; i < h->n_attrs; i++) {
		const struct xml_attr *a = &h->attrs[i];
		log_str(r, " @");
		if (a->prefix != NULL) {
			log_str(r, a->prefix);
			log_str(r, ":");
		}
		log_str(r, a->name);
		if (a->ns != NULL) {
			log_str(r, "{");
			log_str(r, a->ns);
			log_str(r, "}");
		}
		log_str(r, "='");
		log_str(r, a->value);
		log_str(r, "'");
	}
	for (i = 0; i < h->n_nsdecls; i++) {
		log_str(r, " #");
		if (h->nsdecls[i].prefix != NULL)
			log_str(r, h->nsdecls[i].prefix);
		log_str(r, "='");
		log_str(r, h->nsdecls[i].uri);
		log_str(r, "'");
	}
	if (h->first_child != NULL)
		log_str(r, " CHILDREN");
	log_str(r, "\n");
	if (r->stop_all)
		xml_stream_stop(r->xs);
}

static void
rec_stanza(void *ctx, struct xml_node *n)
{
	struct rec *r = ctx;

	log_str(r, "T ");
	if (xml_serialize(n, NS_SERVER, &r->log) == -1)
		log_str(r, "(serialize failed)");
	log_str(r, "\n");
	if (r->log_raw) {
		size_t len;
		const char *raw = xml_stream_raw_stanza(r->xs, &len);
		log_str(r, "R ");
		if (raw == NULL)
			log_str(r, "-");
		else if (strbuf_append(&r->log, raw, len) == -1)
			abort();
		log_str(r, "\n");
	}
	if (r->stop_all || (r->stop_on != NULL && strcmp(n->name, r->stop_on) == 0))
		xml_stream_stop(r->xs);
	r->reset_rc = xml_stream_reset(r->xs);
	if (r->keep && r->kept == NULL)
		r->kept = n;
	else
		xml_node_free(n);
	if (r->free_on_stanza) {
		xml_stream_free(r->xs);
		r->xs = NULL;
	}
}

static void
rec_end(void *ctx)
{
	struct rec *r = ctx;

	log_str(r, "E\n");
	if (r->stop_all)
		xml_stream_stop(r->xs);
}

static void
rec_error(void *ctx, enum xml_stream_error err, const char *detail)
{
	struct rec *r = ctx;

	CU_ASSERT_PTR_NOT_NULL(detail);
	log_str(r, "X ");
	log_str(r, xml_stream_error_condition(err));
	log_str(r, "\n");
	r->nerr++;
	r->err = err;
	if (r->free_on_error) {
		xml_stream_free(r->xs);
		r->xs = NULL;
	}
}

static void
log_head_field(struct rec *r, const char *name, const char *value)
{
	log_str(r, " ");
	log_str(r, name);
	if (value == NULL) {
		log_str(r, "=-");
		return;
	}
	log_str(r, "='");
	log_str(r, value);
	log_str(r, "'");
}

/* Logs "H {ns}name from=.. to=.. type=.. id=.." and "R bytes". */
static bool
rec_raw_stanza(void *ctx, const struct xml_stanza_head *h, const char *raw, size_t len)
{
	struct rec *r = ctx;

	CU_ASSERT_PTR_NOT_NULL_FATAL(h->ns);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h->name);
	CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
	if (r->decline_raw)
		return false;
	log_str(r, "H {");
	log_str(r, h->ns);
	log_str(r, "}");
	log_str(r, h->name);
	log_head_field(r, "from", h->from);
	log_head_field(r, "to", h->to);
	log_head_field(r, "type", h->type);
	log_head_field(r, "id", h->id);
	log_str(r, "\nR ");
	if (strbuf_append(&r->log, raw, len) == -1)
		abort();
	log_str(r, "\n");
	if (r->stop_all || (r->stop_on != NULL && strcmp(h->name, r->stop_on) == 0))
		xml_stream_stop(r->xs);
	r->reset_rc = xml_stream_reset(r->xs);
	if (r->free_on_stanza) {
		xml_stream_free(r->xs);
		r->xs = NULL;
	}
	return true;
}

static const struct xml_stream_callbacks rec_cb = {
	.on_stream_start = rec_start,
	.on_stanza = rec_stanza,
	.on_stream_end = rec_end,
	.on_error = rec_error,
};

/* The same, taking shallow stanzas as head and bytes. */
static const struct xml_stream_callbacks rec_head_cb = {
	.on_stream_start = rec_start,
	.on_stanza = rec_stanza,
	.on_raw_stanza = rec_raw_stanza,
	.on_stream_end = rec_end,
	.on_error = rec_error,
};

/* Every stream is made shallow while a suite run with it on runs; with
 * head_streams too, shallow stanzas go to on_raw_stanza. */
static bool shallow_streams, head_streams;
/* feed_chunks lets the parser hibernate before every feed; and counts
 * how often it did. */
static bool hibernate_feeds;
static unsigned long hibernations;

static int
shallow_on(void)
{
	shallow_streams = true;
	return 0;
}

static int
shallow_off(void)
{
	shallow_streams = head_streams = false;
	return 0;
}

static int
head_on(void)
{
	shallow_streams = head_streams = true;
	return 0;
}

static void
rec_init(struct rec *r, const struct xml_stream_limits *lim)
{
	memset(r, 0, sizeof(*r));
	strbuf_init(&r->log, 0);
	r->reset_rc = -1;
	r->xs = xml_stream_new(lim != NULL ? lim : &test_limits, head_streams ? &rec_head_cb : &rec_cb, r);
	if (r->xs == NULL)
		abort();
	xml_stream_set_shallow(r->xs, shallow_streams);
}

static void
rec_fini(struct rec *r)
{
	xml_stream_free(r->xs);
	xml_node_free(r->kept);
	strbuf_free(&r->log);
}

/* Feeds data in chunks of chunk bytes. On a stop, logs "@offset" (from
 * the start of data) and, with resume, goes on from the first unconsumed
 * byte, as a caller draining its input buffer would. *pos gets the offset
 * reached. */
static enum xml_feed_result
feed_chunks(struct rec *r, const char *data, size_t len, size_t chunk,
    bool resume, size_t *pos)
{
	enum xml_feed_result res = XS_FEED_OK;
	size_t off = 0, n, used;
	char buf[32];

	while (off < len) {
		n = len - off < chunk ? len - off : chunk;
		if (hibernate_feeds && xml_stream_hibernate(r->xs))
			hibernations++;
		res = xml_stream_feed(r->xs, data + off, n, &used);
		if (res == XS_FEED_OK) {
			CU_ASSERT_EQUAL(used, n);
			off += n;
			continue;
		}
		if (res == XS_FEED_ERROR)
			break;
		CU_ASSERT(used <= n);
		off += used;
		snprintf(buf, sizeof(buf), "@%zu\n", off);
		log_str(r, buf);
		if (!resume)
			break;
	}
	if (pos != NULL)
		*pos = off;
	return res;
}

/* The log of one run, malloc'd. */
static char *
run_stream(const char *data, size_t len, size_t chunk, bool stop_all)
{
	struct rec r;
	enum xml_feed_result res;
	size_t pos;
	char *log;

	rec_init(&r, NULL);
	r.stop_all = stop_all;
	res = feed_chunks(&r, data, len, chunk, true, &pos);
	CU_ASSERT_NOT_EQUAL(res, XS_FEED_ERROR);
	CU_ASSERT_EQUAL(pos, len);
	CU_ASSERT_EQUAL(r.nerr, 0);
	log = strbuf_steal(&r.log, NULL);
	rec_fini(&r);
	return log;
}

/* Drops the "@offset" lines of a log, in place. */
static void
strip_stops(char *log)
{
	char *src = log, *dst = log, *nl;
	size_t n;

	while (*src != '\0') {
		nl = strchr(src, '\n');
		n = nl != NULL ? (size_t)(nl - src) + 1 : strlen(src);
		if (*src != '@') {
			memmove(dst, src, n);
			dst += n;
		}
		src += n;
	}
	*dst = '\0';
}

/* Feeds a real stream at every chunk size, plainly and stopping (then
 * resuming) after every event; all runs must give the expected events,
 * and the stop offsets must not depend on the chunk size. */
static void
check_stream(const char *data, const char *expect)
{
	size_t len = strlen(data), chunk;
	char *log, *stops;
	bool ok = true;

	log = run_stream(data, len, len, false);
	CU_ASSERT_STRING_EQUAL(log, expect);
	if (strcmp(log, expect) != 0)
		fprintf(stderr, "\ngot:\n%s\nwant:\n%s\n", log, expect);
	free(log);

	stops = run_stream(data, len, len, true);
	log = strdup(stops);
	CU_ASSERT_PTR_NOT_NULL_FATAL(log);
	strip_stops(log);
	CU_ASSERT_STRING_EQUAL(log, expect);
	free(log);

	for (chunk = 1; chunk <= len && ok; chunk++) {
		log = run_stream(data, len, chunk, false);
		if (strcmp(log, expect) != 0) {
			fprintf(stderr, "\nchunk %zu got:\n%s\n", chunk, log);
			ok = false;
		}
		free(log);
		/* the same with the parser hibernating whenever it can */
		hibernate_feeds = true;
		log = run_stream(data, len, chunk, false);
		hibernate_feeds = false;
		if (strcmp(log, expect) != 0) {
			fprintf(stderr, "\nchunk %zu (hibernating) got:\n%s\n", chunk, log);
			ok = false;
		}
		free(log);
		log = run_stream(data, len, chunk, true);
		if (strcmp(log, stops) != 0) {
			fprintf(stderr, "\nchunk %zu (stopping) got:\n%s\nwant:\n%s\n",
			    chunk, log, stops);
			ok = false;
		}
		free(log);
	}
	CU_ASSERT(ok);
	free(stops);
}

/* ---- real streams ------------------------------------------------------ */

/* Prosody 0.12 opening an s2s stream. */
#define HDR_PROSODY "<?xml version='1.0'?><stream:stream " \
	"xmlns:stream='http://etherx.jabber.org/streams' id='' xml:lang='en' " \
	"from='p2.test' xmlns='jabber:server' version='1.0' to='p1.test' " \
	"xmlns:db='jabber:server:dialback'>"
#define EV_PROSODY "S stream:stream{http://etherx.jabber.org/streams}" \
	" @id='' @xml:lang{http://www.w3.org/XML/1998/namespace}='en'" \
	" @from='p2.test' @version='1.0' @to='p1.test'" \
	" #stream='http://etherx.jabber.org/streams' #='jabber:server'" \
	" #db='jabber:server:dialback'\n"

/* A header without xmlns:db: the prefix is declared on each element. */
#define HDR_NODB "<stream:stream xmlns='jabber:server' " \
	"xmlns:stream='http://etherx.jabber.org/streams' to='p1.test' " \
	"from='p2.test' version='1.0'>"
#define EV_NODB "S stream:stream{http://etherx.jabber.org/streams}" \
	" @to='p1.test' @from='p2.test' @version='1.0'" \
	" #='jabber:server' #stream='http://etherx.jabber.org/streams'\n"

#define KEY1 "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3"
#define KEY2 "225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d"

#define FEATURES "<stream:features>" \
	"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" \
	"<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>" \
	"</stream:features>"

static void
test_stream_prosody_header(void)
{
	check_stream(HDR_PROSODY, EV_PROSODY);
}

static void
test_stream_features(void)
{
	check_stream(HDR_PROSODY FEATURES, EV_PROSODY "T " FEATURES "\n");
}

static void
test_stream_dialback_header_prefix(void)
{
	check_stream(HDR_PROSODY
	    "<db:result from='p2.test' to='p1.test'>" KEY1 "</db:result>"
	    "<db:verify from='p1.test' id='417GAF25' to='p2.test'>" KEY2 "</db:verify>"
	    "<db:verify from='p2.test' id='417GAF25' to='p1.test' type='valid'/>"
	    "<db:result from='p2.test' to='p1.test'>\n  " KEY1 "\n</db:result>",
	    EV_PROSODY
	    "T <db:result xmlns:db='jabber:server:dialback' from='p2.test' "
	    "to='p1.test'>" KEY1 "</db:result>\n"
	    "T <db:verify xmlns:db='jabber:server:dialback' from='p1.test' "
	    "id='417GAF25' to='p2.test'>" KEY2 "</db:verify>\n"
	    "T <db:verify xmlns:db='jabber:server:dialback' from='p2.test' "
	    "id='417GAF25' to='p1.test' type='valid'/>\n"
	    "T <db:result xmlns:db='jabber:server:dialback' from='p2.test' "
	    "to='p1.test'>\n  " KEY1 "\n</db:result>\n");
}

static void
test_stream_dialback_element_prefix(void)
{
	check_stream(HDR_NODB
	    "<db:result xmlns:db='jabber:server:dialback' from='p2.test' "
	    "to='p1.test'>" KEY1 "</db:result>"
	    "<db:verify xmlns:db='jabber:server:dialback' from='p1.test' "
	    "id='417GAF25' to='p2.test'>" KEY2 "</db:verify>"
	    /* another prefix for the same namespace is written as parsed */
	    "<dbk:result xmlns:dbk='jabber:server:dialback' from='p2.test' "
	    "to='p1.test' type='valid'/>",
	    EV_NODB
	    "T <db:result xmlns:db='jabber:server:dialback' from='p2.test' "
	    "to='p1.test'>" KEY1 "</db:result>\n"
	    "T <db:verify xmlns:db='jabber:server:dialback' from='p1.test' "
	    "id='417GAF25' to='p2.test'>" KEY2 "</db:verify>\n"
	    "T <dbk:result xmlns:dbk='jabber:server:dialback' from='p2.test' "
	    "to='p1.test' type='valid'/>\n");
}

static void
test_stream_multiplexed(void)
{
	check_stream(HDR_PROSODY
	    "<db:result from='a.test' to='p1.test'>" KEY1 "</db:result>"
	    "<db:result from='b.test' to='p1.test'>" KEY2 "</db:result>"
	    "<db:result from='a.test' to='conference.p1.test'>" KEY2 "</db:result>"
	    "<message from='u@a.test/r' to='v@p1.test' type='chat' id='m1'>"
	    "<body>hi &amp; bye</body></message>"
	    "<db:result from='p1.test' to='a.test' type='valid'/>"
	    "<presence from='u@b.test' to='w@conference.p1.test/nick'>"
	    "<x xmlns='http://jabber.org/protocol/muc'/></presence>"
	    "<db:result from='p1.test' to='b.test' type='error'>"
	    "<error type='cancel'><item-not-found "
	    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>"
	    "<iq from='a.test' to='p1.test' id='v1' type='get'>"
	    "<query xmlns='jabber:iq:version'/></iq>",
	    EV_PROSODY
	    "T <db:result xmlns:db='jabber:server:dialback' from='a.test' "
	    "to='p1.test'>" KEY1 "</db:result>\n"
	    "T <db:result xmlns:db='jabber:server:dialback' from='b.test' "
	    "to='p1.test'>" KEY2 "</db:result>\n"
	    "T <db:result xmlns:db='jabber:server:dialback' from='a.test' "
	    "to='conference.p1.test'>" KEY2 "</db:result>\n"
	    "T <message from='u@a.test/r' to='v@p1.test' type='chat' id='m1'>"
	    "<body>hi &amp; bye</body></message>\n"
	    "T <db:result xmlns:db='jabber:server:dialback' from='p1.test' "
	    "to='a.test' type='valid'/>\n"
	    "T <presence from='u@b.test' to='w@conference.p1.test/nick'>"
	    "<x xmlns='http://jabber.org/protocol/muc'/></presence>\n"
	    "T <db:result xmlns:db='jabber:server:dialback' from='p1.test' "
	    "to='b.test' type='error'><error type='cancel'><item-not-found "
	    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>\n"
	    "T <iq from='a.test' to='p1.test' id='v1' type='get'>"
	    "<query xmlns='jabber:iq:version'/></iq>\n");
}

static void
test_stream_keepalive_end(void)
{
	check_stream(HDR_PROSODY " "
	    "<db:result from='p2.test' to='p1.test'>" KEY1 "</db:result>"
	    "\n \t\r\n "
	    "<message from='a@p2.test' to='b@p1.test'><body>x</body></message>"
	    " \n \n</stream:stream>\n ",
	    EV_PROSODY
	    "T <db:result xmlns:db='jabber:server:dialback' from='p2.test' "
	    "to='p1.test'>" KEY1 "</db:result>\n"
	    "T <message from='a@p2.test' to='b@p1.test'><body>x</body></message>\n"
	    "E\n");
}

static void
test_stream_legacy(void)
{
	/* jabberd 1.x style: no version, no to/from, an empty id. */
	check_stream("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
	    "xmlns='jabber:server' xmlns:db='jabber:server:dialback' id=''>"
	    "<db:result to='p1.test' from='old.test'>" KEY1 "</db:result>"
	    "</stream:stream>",
	    "S stream:stream{http://etherx.jabber.org/streams} @id=''"
	    " #stream='http://etherx.jabber.org/streams' #='jabber:server'"
	    " #db='jabber:server:dialback'\n"
	    "T <db:result xmlns:db='jabber:server:dialback' to='p1.test' "
	    "from='old.test'>" KEY1 "</db:result>\n"
	    "E\n");
}

static void
test_stream_session(void)
{
	/* The receiving side of a whole dialback session, UTF-8 included. */
	check_stream("<?xml version='1.0' encoding='utf-8'?>\n"
	    "<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
	    "xmlns:stream='http://etherx.jabber.org/streams' from='montague.example' "
	    "to='capulet.example' version='1.0' xml:lang='en'>\n"
	    "<db:result from='montague.example' to='capulet.example'>\n  "
	    KEY1 "\n</db:result>\n"
	    "<message from='romeo@montague.example' to='juliet@capulet.example' "
	    "xml:lang='fr'><body>J\xc3\xa9 t'aime \xe2\x99\xa5 \xf0\x9f\x8c\xb9"
	    "<![CDATA[ <3 & ]]></body></message>\n"
	    "</stream:stream>",
	    "S stream:stream{http://etherx.jabber.org/streams}"
	    " @from='montague.example' @to='capulet.example' @version='1.0'"
	    " @xml:lang{http://www.w3.org/XML/1998/namespace}='en'"
	    " #='jabber:server' #db='jabber:server:dialback'"
	    " #stream='http://etherx.jabber.org/streams'\n"
	    "T <db:result xmlns:db='jabber:server:dialback' from='montague.example' "
	    "to='capulet.example'>\n  " KEY1 "\n</db:result>\n"
	    "T <message from='romeo@montague.example' to='juliet@capulet.example' "
	    "xml:lang='fr'><body>J\xc3\xa9 t&apos;aime \xe2\x99\xa5 \xf0\x9f\x8c\xb9"
	    " &lt;3 &amp; </body></message>\n"
	    "E\n");
}

/* (e) STARTTLS: the parser stops right after <starttls/>; the TLS bytes
 * behind it are never parsed; after a reset a new header is accepted. */
static void
check_starttls(const char *starttls)
{
	static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
	    "\x8a\x00\xff<\xfe garbage";
	static const char hdr2[] = "<?xml version='1.0'?><stream:stream "
	    "xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en' "
	    "from='p2.test' xmlns='jabber:server' version='1.0' to='p1.test' "
	    "xmlns:db='jabber:server:dialback'>"
	    "<db:result from='p2.test' to='p1.test'>" KEY1 "</db:result>";
	struct strbuf in, want;
	size_t stop_at, len, chunk, pos;
	enum xml_feed_result res;
	char *log;
	bool ok = true;
	struct rec r;

	strbuf_init(&in, 0);
	strbuf_init(&want, 0);
	if (strbuf_appends(&in, HDR_PROSODY) == -1 ||
	    strbuf_appends(&in, starttls) == -1)
		abort();
	stop_at = in.len;
	if (strbuf_append(&in, tls, sizeof(tls) - 1) == -1)
		abort();
	len = in.len;
	if (strbuf_printf(&want, "%sT <starttls xmlns='urn:ietf:params:xml:ns:"
	    "xmpp-tls'/>\n@%zu\n"
	    "S stream:stream{http://etherx.jabber.org/streams}"
	    " @xml:lang{http://www.w3.org/XML/1998/namespace}='en'"
	    " @from='p2.test' @version='1.0' @to='p1.test'"
	    " #stream='http://etherx.jabber.org/streams' #='jabber:server'"
	    " #db='jabber:server:dialback'\n"
	    "T <db:result xmlns:db='jabber:server:dialback' from='p2.test' "
	    "to='p1.test'>" KEY1 "</db:result>\n", EV_PROSODY, stop_at) == -1)
		abort();

	for (chunk = 1; chunk <= len && ok; chunk++) {
		rec_init(&r, NULL);
		r.stop_on = "starttls";
		res = feed_chunks(&r, in.data, len, chunk, false, &pos);
		CU_ASSERT_EQUAL(res, XS_FEED_STOPPED);
		CU_ASSERT_EQUAL(pos, stop_at);
		/* as after the TLS handshake */
		CU_ASSERT_EQUAL(xml_stream_reset(r.xs), 0);
		res = feed_chunks(&r, hdr2, strlen(hdr2), chunk, true, &pos);
		CU_ASSERT_EQUAL(res, XS_FEED_OK);
		CU_ASSERT_EQUAL(pos, strlen(hdr2));
		CU_ASSERT_EQUAL(r.nerr, 0);
		log = r.log.data;
		if (log == NULL || strcmp(log, want.data) != 0) {
			fprintf(stderr, "\nchunk %zu got:\n%s\nwant:\n%s\n", chunk,
			    log != NULL ? log : "(null)", want.data);
			ok = false;
		}
		rec_fini(&r);
	}
	CU_ASSERT(ok);
	strbuf_free(&in);
	strbuf_free(&want);
}

static void
test_stream_starttls_restart(void)
{
	check_starttls("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
	check_starttls("\n<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>");
}

static void
test_stream_stop_after_header(void)
{
	static const char data[] = HDR_PROSODY "\x16\x03\x01 not xml";
	size_t chunk, pos, len = sizeof(data) - 1;
	enum xml_feed_result res;
	struct rec r;

	for (chunk = 1; chunk <= len; chunk++) {
		rec_init(&r, NULL);
		r.stop_all = true;
		res = feed_chunks(&r, data, len, chunk, false, &pos);
		CU_ASSERT_EQUAL(res, XS_FEED_STOPPED);
		CU_ASSERT_EQUAL(pos, strlen(HDR_PROSODY));
		CU_ASSERT_EQUAL(r.nerr, 0);
		rec_fini(&r);
	}
}

static void
test_stream_resume_rules(void)
{
	static const char data[] = HDR_PROSODY "<a/><b/><c/>";
	enum xml_feed_result res;
	size_t used, a_end = strlen(HDR_PROSODY) + 4;
	struct rec r;

	/* stop outside a callback is ignored */
	rec_init(&r, NULL);
	xml_stream_stop(r.xs);
	CU_ASSERT_EQUAL(xml_stream_feed(r.xs, data, sizeof(data) - 1, &used), XS_FEED_OK);
	CU_ASSERT_EQUAL(used, sizeof(data) - 1);
	rec_fini(&r);

	/* resuming with fewer bytes than were left over is refused */
	rec_init(&r, NULL);
	r.stop_on = "a";
	res = xml_stream_feed(r.xs, data, sizeof(data) - 1, &used);
	CU_ASSERT_EQUAL(res, XS_FEED_STOPPED);
	CU_ASSERT_EQUAL(used, a_end);
	res = xml_stream_feed(r.xs, data + used, 2, &used);
	CU_ASSERT_EQUAL(res, XS_FEED_ERROR);
	CU_ASSERT_EQUAL(r.nerr, 1);
	rec_fini(&r);

	/* a reset from inside a callback is refused; the stream goes on */
	rec_init(&r, NULL);
	res = xml_stream_feed(r.xs, data, sizeof(data) - 1, &used);
	CU_ASSERT_EQUAL(res, XS_FEED_OK);
	CU_ASSERT_EQUAL(r.reset_rc, -1);
	rec_fini(&r);

	/* a stop then a reset without resuming */
	rec_init(&r, NULL);
	r.stop_on = "b";
	res = xml_stream_feed(r.xs, data, sizeof(data) - 1, &used);
	CU_ASSERT_EQUAL(res, XS_FEED_STOPPED);
	CU_ASSERT_EQUAL(used, a_end + 4);
	CU_ASSERT_EQUAL(xml_stream_reset(r.xs), 0);
	r.stop_on = NULL;
	res = xml_stream_feed(r.xs, data, sizeof(data) - 1, &used);
	CU_ASSERT_EQUAL(res, XS_FEED_OK);
	CU_ASSERT_EQUAL(r.nerr, 0);
	CU_ASSERT_STRING_EQUAL(r.log.data, EV_PROSODY "T <a/>\nT <b/>\n"
	    EV_PROSODY "T <a/>\nT <b/>\nT <c/>\n");
	rec_fini(&r);
}

static void
test_stream_free_in_callback(void)
{
	static const char data[] = HDR_PROSODY "<a/><b/>";
	static const char bad[] = HDR_PROSODY "<a><b></a>";
	struct rec r;

	/* freed from on_stanza: the feed ends there, nothing leaks */
	rec_init(&r, NULL);
	r.free_on_stanza = true;
	CU_ASSERT_EQUAL(xml_stream_feed(r.xs, data, sizeof(data) - 1, NULL),
	    XS_FEED_ERROR);
	CU_ASSERT_PTR_NULL(r.xs);
	CU_ASSERT_EQUAL(r.nerr, 0);
	CU_ASSERT_STRING_EQUAL(r.log.data, EV_PROSODY "T <a/>\n");
	rec_fini(&r);

	/* freed from on_error */
	rec_init(&r, NULL);
	r.free_on_error = true;
	CU_ASSERT_EQUAL(xml_stream_feed(r.xs, bad, sizeof(bad) - 1, NULL),
	    XS_FEED_ERROR);
	CU_ASSERT_PTR_NULL(r.xs);
	CU_ASSERT_EQUAL(r.nerr, 1);
	CU_ASSERT_EQUAL(r.err, XS_ERR_NOT_WELL_FORMED);
	rec_fini(&r);
}

/* ---- hostile input ----------------------------------------------------- */

/* Feeds data at several chunk sizes; each run must end in exactly one
 * error with the wanted condition, and the stream must stay dead. */
static void
expect_refused_lim(const char *data, size_t len,
    const struct xml_stream_limits *lim, enum xml_stream_error want)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 64, 1000, SIZE_MAX };
	enum xml_feed_result res;
	size_t i;
	struct rec r;

	for (i = 0; i < ARRAY_SIZE(chunks); i++) {
		rec_init(&r, lim);
		res = feed_chunks(&r, data, len, chunks[i], true, NULL);
		CU_ASSERT_EQUAL(res, XS_FEED_ERROR);
		CU_ASSERT_EQUAL(r.nerr, 1);
		CU_ASSERT_EQUAL(r.err, want);
		if (r.nerr != 1 || r.err != want)
			fprintf(stderr, "\nchunk %zu: want %s, log:\n%s\n", chunks[i],
			    xml_stream_error_condition(want),
			    r.log.data != NULL ? r.log.data : "");
		/* dead: no second report */
		CU_ASSERT_EQUAL(xml_stream_feed(r.xs, "<a/>", 4, NULL), XS_FEED_ERROR);
		CU_ASSERT_EQUAL(r.nerr, 1);
		rec_fini(&r);
	}
}

static void
expect_refused(const char *data, enum xml_stream_error want)
{
	expect_refused_lim(data, strlen(data), NULL, want);
}

/* Repeats s n times after prefix, then suffix. malloc'd. */
static char *
repeat(const char *prefix, const char *s, size_t n, const char *suffix)
{
	struct strbuf sb;
	size_t i;

	strbuf_init(&sb, 0);
	if (strbuf_appends(&sb, prefix) == -1)
		abort();
	for (i = 0; i < n; i++) {
		if (strbuf_appends(&sb, s) == -1)
			abort();
	}
	if (strbuf_appends(&sb, suffix) == -1)
		abort();
	return strbuf_steal(&sb, NULL);
}

static void
test_hostile_dtd(void)
{
	expect_refused("<?xml version='1.0'?><!DOCTYPE stream:stream>" HDR_NODB,
	    XS_ERR_RESTRICTED_XML);
	expect_refused("<!DOCTYPE stream:stream SYSTEM 'http://evil.test/x.dtd'>"
	    HDR_NODB, XS_ERR_RESTRICTED_XML);
	expect_refused("<!DOCTYPE s [<!ENTITY e 'x'>]>" HDR_NODB,
	    XS_ERR_RESTRICTED_XML);
}

static void
test_hostile_billion_laughs(void)
{
	expect_refused("<?xml version='1.0'?>\n"
	    "<!DOCTYPE lolz [\n"
	    " <!ENTITY lol \"lol\">\n"
	    " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
	    " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
	    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
	    " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
	    " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
	    " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
	    " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
	    " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
	    " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
	    "]>\n"
	    HDR_NODB "<message><body>&lol9;</body></message>",
	    XS_ERR_RESTRICTED_XML);
}

static void
test_hostile_deep_nesting(void)
{
	char *s = repeat(HDR_PROSODY, "<a>", 10000, "");

	expect_refused(s, XS_ERR_POLICY_VIOLATION);
	free(s);
	/* max_depth itself is allowed */
	s = repeat(HDR_PROSODY "<m>", "<a>", 31, "");
	{
		struct rec r;
		rec_init(&r, NULL);
		CU_ASSERT_EQUAL(xml_stream_feed(r.xs, s, strlen(s), NULL), XS_FEED_OK);
		CU_ASSERT_EQUAL(xml_stream_feed(r.xs, "<a>", 3, NULL), XS_FEED_ERROR);
		CU_ASSERT_EQUAL(r.err, XS_ERR_POLICY_VIOLATION);
		rec_fini(&r);
	}
	free(s);
}

static const struct xml_stream_limits small_limits = {
	.max_stanza_bytes = 4096,
	.max_depth = 8,
	.max_attrs = 8,
	.max_children = 4,
	.max_header_bytes = 512,
};

/* Feeds data in chunk-byte pieces and returns the offset at which the
 * feed failed (len when it never did). */
static size_t
error_offset(const char *data, size_t len, size_t chunk,
    const struct xml_stream_limits *lim, enum xml_stream_error *err)
{
	size_t off = 0, n;
	struct rec r;

	rec_init(&r, lim);
	*err = XS_ERR_NONE;
	while (off < len) {
		n = len - off < chunk ? len - off : chunk;
		off += n;
		if (xml_stream_feed(r.xs, data + off - n, n, NULL) != XS_FEED_OK) {
			*err = r.err;
			break;
		}
	}
	rec_fini(&r);
	return off;
}

static void
test_hostile_big_text(void)
{
	char *s = repeat(HDR_PROSODY "<message><body>", "a", 100000,
	    "</body></message>");
	size_t len = strlen(s), at, hl = strlen(HDR_PROSODY);
	enum xml_stream_error err;

	expect_refused_lim(s, len, &small_limits, XS_ERR_POLICY_VIOLATION);
	/* refused as the bytes arrive, not when the element ends */
	at = error_offset(s, len, 512, &small_limits, &err);
	CU_ASSERT_EQUAL(err, XS_ERR_POLICY_VIOLATION);
	CU_ASSERT(at <= hl + small_limits.max_stanza_bytes + 512);
	free(s);
}

static void
test_hostile_big_attribute(void)
{
	char *s = repeat(HDR_PROSODY "<message to='", "a", 1000000, "'/>");
	size_t len = strlen(s), at, hl = strlen(HDR_PROSODY);
	enum xml_stream_error err;

	/* one start tag: expat would only report it once complete */
	at = error_offset(s, len, 1000, &small_limits, &err);
	CU_ASSERT_EQUAL(err, XS_ERR_POLICY_VIOLATION);
	CU_ASSERT(at <= hl + small_limits.max_stanza_bytes + 1000);
	at = error_offset(s, len, len, &small_limits, &err);
	CU_ASSERT_EQUAL(err, XS_ERR_POLICY_VIOLATION);
	free(s);
	/* the same in the header */
	s = repeat("<?xml version='1.0'?><stream:stream from='", "a", 1000000, "'>");
	len = strlen(s);
	at = error_offset(s, len, 1000, &small_limits, &err);
	CU_ASSERT_EQUAL(err, XS_ERR_POLICY_VIOLATION);
	CU_ASSERT(at <= small_limits.max_header_bytes + 1000);
	free(s);
}

/* A stanza of exactly max_stanza_bytes passes; one byte more does not. */
static void
test_stanza_size_boundary(void)
{
	struct xml_stream_limits lim = test_limits;
	char *ok, *bad;
	size_t chunk, len, pos, hl = strlen(HDR_PROSODY) + 2;
	enum xml_feed_result res;
	struct rec r;

	lim.max_stanza_bytes = 200;
	/* "<message>" 9 + text + "</message>" 10 */
	ok = repeat(HDR_PROSODY "\n ", "x", 190, "</message>\n\n<a/>");
	memcpy(ok + hl, "<message>", 9);
	bad = repeat(HDR_PROSODY "\n ", "x", 191, "</message>");
	memcpy(bad + hl, "<message>", 9);
	len = strlen(ok);
	for (chunk = 1; chunk <= len; chunk++) {
		rec_init(&r, &lim);
		res = feed_chunks(&r, ok, len, chunk, true, &pos);
		CU_ASSERT_EQUAL(res, XS_FEED_OK);
		CU_ASSERT_EQUAL(r.nerr, 0);
		rec_fini(&r);
		rec_init(&r, &lim);
		res = feed_chunks(&r, bad, strlen(bad), chunk, true, &pos);
		CU_ASSERT_EQUAL(res, XS_FEED_ERROR);
		CU_ASSERT_EQUAL(r.err, XS_ERR_POLICY_VIOLATION);
		rec_fini(&r);
	}
	free(ok);
	free(bad);
}

static void
test_hostile_invalid_utf8(void)
{
	expect_refused(HDR_PROSODY "<message><body>\xc3\x28</body></message>",
	    XS_ERR_NOT_WELL_FORMED);
	expect_refused(HDR_PROSODY "<message to='\xff'/>", XS_ERR_NOT_WELL_FORMED);
	expect_refused(HDR_PROSODY "<message><body>\xc0\xaf</body></message>",
	    XS_ERR_NOT_WELL_FORMED);
	expect_refused(HDR_PROSODY "<message><body>\xed\xa0\x80</body></message>",
	    XS_ERR_NOT_WELL_FORMED);
	expect_refused(HDR_PROSODY "<message><body>\xe2\x82<b/></body></message>",
	    XS_ERR_NOT_WELL_FORMED);
	expect_refused(HDR_PROSODY "<message><body>&#0;</body></message>",
	    XS_ERR_NOT_WELL_FORMED);
}

static void
test_hostile_unbound_prefix(void)
{
	expect_refused(HDR_PROSODY "<foo:bar/>", XS_ERR_BAD_NAMESPACE_PREFIX);
	expect_refused(HDR_PROSODY "<message foo:x='1'/>",
	    XS_ERR_BAD_NAMESPACE_PREFIX);
	expect_refused(HDR_NODB "<db:result from='a' to='b'>k</db:result>",
	    XS_ERR_BAD_NAMESPACE_PREFIX);
	expect_refused("<stream xmlns='http://etherx.jabber.org/streams'>"
	    "<x:y/>", XS_ERR_BAD_NAMESPACE_PREFIX);
	expect_refused(HDR_PROSODY "<m xmlns:xml='urn:not-xml'/>",
	    XS_ERR_BAD_NAMESPACE_PREFIX);
}

static void
test_hostile_comment_pi(void)
{
	expect_refused(HDR_PROSODY "<!-- hi -->", XS_ERR_RESTRICTED_XML);
	expect_refused(HDR_PROSODY "<message><!-- hi --></message>",
	    XS_ERR_RESTRICTED_XML);
	expect_refused("<?xml version='1.0'?><!-- hi -->" HDR_NODB,
	    XS_ERR_RESTRICTED_XML);
	expect_refused(HDR_PROSODY "<?foo bar?>", XS_ERR_RESTRICTED_XML);
	expect_refused(HDR_PROSODY "<message><?foo?></message>",
	    XS_ERR_RESTRICTED_XML);
	expect_refused("<?xml version='1.0'?><?xml-stylesheet href='x'?>" HDR_NODB,
	    XS_ERR_RESTRICTED_XML);
	/* an XML declaration anywhere but first is not well-formed */
	expect_refused(HDR_PROSODY "<?xml version='1.0'?>", XS_ERR_NOT_WELL_FORMED);
}

static void
expect_refused_small(const char *data, enum xml_stream_error want)
{
	expect_refused_lim(data, strlen(data), &small_limits, want);
}

static void
expect_accepted_small(const char *data)
{
	struct rec r;

	rec_init(&r, &small_limits);
	CU_ASSERT_EQUAL(xml_stream_feed(r.xs, data, strlen(data), NULL), XS_FEED_OK);
	CU_ASSERT_EQUAL(r.nerr, 0);
	rec_fini(&r);
}

static void
test_hostile_attrs_children(void)
{
	expect_refused_small(HDR_PROSODY
	    "<m a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8' i='9'/>",
	    XS_ERR_POLICY_VIOLATION);
	expect_accepted_small(HDR_PROSODY
	    "<m a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8'/>");
	/* declarations count: they are attributes on the wire */
	expect_refused_small(HDR_PROSODY
	    "<m a='1' b='2' c='3' d='4' e='5' xmlns:p='u:1' xmlns:q='u:2' "
	    "xmlns:r='u:3' xmlns='u:4'/>", XS_ERR_POLICY_VIOLATION);
	expect_refused_small(HDR_PROSODY "<m><a/><b/><c/><d/><e/></m>",
	    XS_ERR_POLICY_VIOLATION);
	expect_accepted_small(HDR_PROSODY "<m><a/><b/><c/><d/></m>");
	/* text nodes are children too */
	expect_refused_small(HDR_PROSODY "<m><a/>t<b/>t<c/></m>",
	    XS_ERR_POLICY_VIOLATION);
	expect_accepted_small(HDR_PROSODY "<m><a/>t<b/>t</m>");
	/* the same for stanzas, which a shallow stream does not build */
	expect_refused_small(HDR_PROSODY "<message><a/><b/><c/><d/><e/></message>",
	    XS_ERR_POLICY_VIOLATION);
	expect_accepted_small(HDR_PROSODY "<message><a/><b/><c/><d/></message>");
	expect_refused_small(HDR_PROSODY "<iq><q><a/>t<b/>t<c/></q></iq>",
	    XS_ERR_POLICY_VIOLATION);
	expect_accepted_small(HDR_PROSODY "<iq><q><a/>t<b/>t</q></iq>");
	expect_accepted_small(HDR_PROSODY "<iq>t<a/>t<b/></iq><iq>t<a/>t<b/></iq>");
	/* entities, CDATA and whitespace between tags are text as well */
	expect_refused_small(HDR_PROSODY "<message><a/>&amp;<b/>&#65;<c/></message>",
	    XS_ERR_POLICY_VIOLATION);
	expect_refused_small(HDR_PROSODY "<message><a/><![CDATA[x]]><b/>t<c/></message>",
	    XS_ERR_POLICY_VIOLATION);
	expect_refused_small(HDR_PROSODY "<message> <a/> <b/> </message>",
	    XS_ERR_POLICY_VIOLATION);
	expect_accepted_small(HDR_PROSODY "<message><a>&lt;</a><b><![CDATA[x]]></b>t</message>");
	expect_refused_small(HDR_PROSODY "<presence><a a='1' b='2' c='3' d='4' e='5' "
	    "f='6' g='7' h='8' i='9'/></presence>", XS_ERR_POLICY_VIOLATION);
	expect_refused_small(HDR_PROSODY "<message><a><b><c><d><e><f><g><h/></g></f></e>"
	    "</d></c></b></a></message>", XS_ERR_POLICY_VIOLATION);
	expect_accepted_small(HDR_PROSODY "<message><a><b><c><d><e><f><g/></f></e>"
	    "</d></c></b></a></message>");
}

static void
test_keepalive_flood(void)
{
	/* whitespace between stanzas is not part of any stanza */
	char *s = repeat(HDR_PROSODY "<a/>", " \n", 50000, "<b/>");
	size_t len = strlen(s);
	enum xml_stream_error err;

	CU_ASSERT_EQUAL(error_offset(s, len, 1000, &small_limits, &err), len);
	CU_ASSERT_EQUAL(err, XS_ERR_NONE);
	CU_ASSERT_EQUAL(error_offset(s, len, len, &small_limits, &err), len);
	CU_ASSERT_EQUAL(err, XS_ERR_NONE);
	free(s);
}

static void
test_reset_after_error(void)
{
	static const char bad[] = HDR_PROSODY "<a><!-- x --></a>";
	struct rec r;

	rec_init(&r, NULL);
	CU_ASSERT_EQUAL(xml_stream_feed(r.xs, bad, sizeof(bad) - 1, NULL),
	    XS_FEED_ERROR);
	CU_ASSERT_EQUAL(r.err, XS_ERR_RESTRICTED_XML);
	CU_ASSERT_EQUAL(xml_stream_reset(r.xs), 0);
	CU_ASSERT_EQUAL(xml_stream_feed(r.xs, HDR_PROSODY "<b/>",
	    strlen(HDR_PROSODY "<b/>"), NULL), XS_FEED_OK);
	CU_ASSERT_EQUAL(r.nerr, 1);
	CU_ASSERT_STRING_EQUAL(r.log.data, EV_PROSODY "X restricted-xml\n"
	    EV_PROSODY "T <b/>\n");
	rec_fini(&r);
}

static void
test_hostile_header(void)
{
	char *s;

	/* too many attributes on the header */
	expect_refused_lim("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
	    "a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8'>",
	    strlen("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
	    "a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8'>"),
	    &small_limits, XS_ERR_POLICY_VIOLATION);
	/* whitespace before the header counts toward it */
	s = repeat("<?xml version='1.0'?>", " ", 1000, HDR_NODB);
	expect_refused_lim(s, strlen(s), &small_limits, XS_ERR_POLICY_VIOLATION);
	free(s);
	s = repeat("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
	    "from='", "x", 600, "'>");
	expect_refused_lim(s, strlen(s), &small_limits, XS_ERR_POLICY_VIOLATION);
	free(s);
}

static void
test_hostile_encoding(void)
{
	static const char utf16be[] = "\xfe\xff\x00<\x00?\x00x";
	static const char utf16le[] = "\xff\xfe<\x00?\x00x\x00";
	static const char le_nobom[] = "<\x00?\x00x\x00m\x00";
	static const char be_nobom[] = "\x00<\x00?\x00x";
	struct rec r;

	expect_refused("<?xml version='1.0' encoding='ISO-8859-1'?>" HDR_NODB,
	    XS_ERR_UNSUPPORTED_ENCODING);
	expect_refused("<?xml version='1.0' encoding='UTF-16'?>" HDR_NODB,
	    XS_ERR_UNSUPPORTED_ENCODING);
	expect_refused_lim(utf16be, sizeof(utf16be) - 1, NULL,
	    XS_ERR_UNSUPPORTED_ENCODING);
	expect_refused_lim(utf16le, sizeof(utf16le) - 1, NULL,
	    XS_ERR_UNSUPPORTED_ENCODING);
	expect_refused_lim(le_nobom, sizeof(le_nobom) - 1, NULL,
	    XS_ERR_UNSUPPORTED_ENCODING);
	expect_refused_lim(be_nobom, sizeof(be_nobom) - 1, NULL,
	    XS_ERR_UNSUPPORTED_ENCODING);
	/* UTF-8, declared in any case or with a BOM, is fine */
	rec_init(&r, NULL);
	CU_ASSERT_EQUAL(xml_stream_feed(r.xs,
	    "<?xml version='1.0' encoding='Utf-8'?>" HDR_NODB,
	    strlen("<?xml version='1.0' encoding='Utf-8'?>" HDR_NODB), NULL),
	    XS_FEED_OK);
	rec_fini(&r);
	rec_init(&r, NULL);
	CU_ASSERT_EQUAL(xml_stream_feed(r.xs, "\xef\xbb\xbf" HDR_NODB,
	    strlen("\xef\xbb\xbf" HDR_NODB), NULL), XS_FEED_OK);
	CU_ASSERT_STRING_EQUAL(r.log.data, EV_NODB);
	rec_fini(&r);
}

static void
test_hostile_misc(void)
{
	/* text at stream level: invalid-xml (see xmlstream.h) */
	expect_refused(HDR_PROSODY "<a/>hello<b/>", XS_ERR_INVALID_XML);
	expect_refused(HDR_PROSODY "  &#65;", XS_ERR_INVALID_XML);
	expect_refused(HDR_PROSODY "<message>&nbsp;</message>", XS_ERR_NOT_WELL_FORMED);
	expect_refused(HDR_PROSODY "<message></presence>", XS_ERR_NOT_WELL_FORMED);
	expect_refused(HDR_PROSODY "<m a='1' a='2'/>", XS_ERR_NOT_WELL_FORMED);
	expect_refused(HDR_PROSODY "</stream:stream><a/>", XS_ERR_NOT_WELL_FORMED);
	expect_refused(HDR_PROSODY "</stream:stream></stream:stream>",
	    XS_ERR_NOT_WELL_FORMED);
	expect_refused("garbage<a/>", XS_ERR_NOT_WELL_FORMED);
	expect_refused(HDR_PROSODY "<m>]]></m>", XS_ERR_NOT_WELL_FORMED);
}

/* ---- serializer ------------------------------------------------------- */

/* Parses header + stanza and returns the stanza (caller frees). */
static struct xml_node *
parse_one(const char *header, const char *stanza)
{
	struct strbuf sb;
	struct xml_node *n;
	struct rec r;

	strbuf_init(&sb, 0);
	if (strbuf_appends(&sb, header) == -1 || strbuf_appends(&sb, stanza) == -1)
		abort();
	rec_init(&r, NULL);
	r.keep = true;
	CU_ASSERT_EQUAL(xml_stream_feed(r.xs, sb.data, sb.len, NULL), XS_FEED_OK);
	CU_ASSERT_EQUAL(r.nerr, 0);
	n = r.kept;
	r.kept = NULL;
	rec_fini(&r);
	strbuf_free(&sb);
	return n;
}

/* Serializes n for a stream whose default namespace is stream_ns and
 * compares with want. */
static void
check_ser(const struct xml_node *n, const char *stream_ns, const char *want)
{
	struct strbuf sb;

	CU_ASSERT_PTR_NOT_NULL_FATAL(n);
	strbuf_init(&sb, 0);
	CU_ASSERT_EQUAL(xml_serialize(n, stream_ns, &sb), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sb.data);
	CU_ASSERT_STRING_EQUAL(sb.data, want);
	if (strcmp(sb.data, want) != 0)
		fprintf(stderr, "\ngot:  %s\nwant: %s\n", sb.data, want);
	strbuf_free(&sb);
}

/* Parses, serializes, checks; then the output parses back to itself. */
static void
roundtrip(const char *header, const char *stanza, const char *stream_ns,
    const char *want)
{
	struct xml_node *n = parse_one(header, stanza), *again;

	check_ser(n, stream_ns, want);
	if (stream_ns != NULL && strcmp(stream_ns, NS_SERVER) == 0) {
		again = parse_one(header, want);
		check_ser(again, stream_ns, want);
		xml_node_free(again);
	}
	xml_node_free(n);
}

static void
test_ser_dialback(void)
{
	roundtrip(HDR_PROSODY, "<db:result from='a.test' to='b.test'>" KEY1
	    "</db:result>", NS_SERVER,
	    "<db:result xmlns:db='jabber:server:dialback' from='a.test' "
	    "to='b.test'>" KEY1 "</db:result>");
	roundtrip(HDR_NODB, "<db:verify xmlns:db='jabber:server:dialback' "
	    "from='a.test' to='b.test' id='i' type='valid'/>", NS_SERVER,
	    "<db:verify xmlns:db='jabber:server:dialback' from='a.test' "
	    "to='b.test' id='i' type='valid'/>");
	/* the <error/> child is in the stream's default namespace */
	roundtrip(HDR_PROSODY, "<db:result from='a' to='b' type='error'>"
	    "<error type='cancel'><item-not-found "
	    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>",
	    NS_SERVER,
	    "<db:result xmlns:db='jabber:server:dialback' from='a' to='b' "
	    "type='error'><error type='cancel'><item-not-found "
	    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>");
	roundtrip(HDR_PROSODY, "<db:result from='a' to='b' type='error'>"
	    "<error type='cancel'/></db:result>", NULL,
	    "<db:result xmlns:db='jabber:server:dialback' from='a' to='b' "
	    "type='error'><error xmlns='jabber:server' type='cancel'/></db:result>");
}

static void
test_ser_escaping(void)
{
	roundtrip(HDR_PROSODY, "<message from='a&amp;b' to='c&lt;d&gt;' "
	    "id=\"&apos;&quot;'\"><body>1 &lt; 2 &amp;&amp; 3 &gt; 2 "
	    "'q' \"dq\" &#x3C;&#62;</body></message>", NS_SERVER,
	    "<message from='a&amp;b' to='c&lt;d&gt;' id='&apos;&quot;&apos;'>"
	    "<body>1 &lt; 2 &amp;&amp; 3 &gt; 2 &apos;q&apos; &quot;dq&quot; "
	    "&lt;&gt;</body></message>");
	/* characters the reader would normalize away are written as refs */
	roundtrip(HDR_PROSODY, "<m a='x&#10;y&#9;z&#13;' b='p\nq'>l1\r\nl2&#13;</m>",
	    NS_SERVER, "<m a='x&#xA;y&#x9;z&#xD;' b='p q'>l1\nl2&#xD;</m>");
}

static void
test_ser_namespaces(void)
{
	/* (component) a jabber:server stanza written into another stream */
	static const char msg[] = "<message from='u@a.test' to='c.p1.test'>"
	    "<body>x</body></message>";
	struct xml_node *n = parse_one(HDR_PROSODY, msg);

	check_ser(n, NS_SERVER, msg);
	check_ser(n, NS_COMPONENT, "<message xmlns='jabber:server' "
	    "from='u@a.test' to='c.p1.test'><body>x</body></message>");
	check_ser(n, NULL, "<message xmlns='jabber:server' "
	    "from='u@a.test' to='c.p1.test'><body>x</body></message>");
	xml_node_free(n);

	/* a redundant declaration on the stanza is not written */
	roundtrip(HDR_PROSODY, "<message xmlns='jabber:server' to='x'>"
	    "<body xmlns='jabber:server'>b</body></message>", NS_SERVER,
	    "<message to='x'><body>b</body></message>");
	/* children in another namespace, grandchildren inherit */
	roundtrip(HDR_PROSODY, "<iq type='result' id='v1' from='a' to='b'>"
	    "<query xmlns='jabber:iq:version'><name>n</name><version>1"
	    "</version></query></iq>", NS_SERVER,
	    "<iq type='result' id='v1' from='a' to='b'>"
	    "<query xmlns='jabber:iq:version'><name>n</name><version>1"
	    "</version></query></iq>");
	/* prefixes declared on the stanza are written once */
	roundtrip(HDR_PROSODY, "<x:a xmlns:x='urn:x'><x:b><x:c/></x:b></x:a>",
	    NS_SERVER, "<x:a xmlns:x='urn:x'><x:b><x:c/></x:b></x:a>");
	/* a prefix declared on the header is written on the stanza */
	roundtrip("<stream:stream xmlns='jabber:server' xmlns:x='urn:x' "
	    "xmlns:stream='http://etherx.jabber.org/streams'>",
	    "<m><x:b/><x:c/></m>", NS_SERVER,
	    "<m><x:b xmlns:x='urn:x'/><x:c xmlns:x='urn:x'/></m>");
	/* prefixed attributes; xml:lang needs no declaration */
	roundtrip(HDR_PROSODY, "<message xmlns:e='urn:e' e:flag='1' xml:lang='de'>"
	    "<e:x e:y='2'/></message>", NS_SERVER,
	    "<message xmlns:e='urn:e' e:flag='1' xml:lang='de'>"
	    "<e:x e:y='2'/></message>");
	/* an undeclared default namespace */
	roundtrip(HDR_PROSODY, "<m><x xmlns=''><y/></x><z/></m>", NS_SERVER,
	    "<m><x xmlns=''><y/></x><z/></m>");
	/* the stream: prefix is the stream's to declare */
	roundtrip(HDR_PROSODY, "<stream:error><host-unknown "
	    "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
	    NS_SERVER, "<stream:error><host-unknown "
	    "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
	/* an unused declaration is kept; the same prefix rebound deeper */
	roundtrip(HDR_PROSODY, "<m xmlns:p='urn:1'><p:a xmlns:p='urn:2'/>"
	    "<p:b/></m>", NS_SERVER,
	    "<m xmlns:p='urn:1'><p:a xmlns:p='urn:2'/><p:b/></m>");
}

static void
test_ser_build(void)
{
	struct xml_node *n, *c, *copy;
	struct strbuf sb;
	size_t len;
	char *t;

	n = xml_node_new("db", "result", NS_DIALBACK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(n);
	CU_ASSERT_EQUAL(xml_node_set_attr(n, NULL, NULL, "from", "a"), 0);
	CU_ASSERT_EQUAL(xml_node_set_attr(n, NULL, NULL, "to", "x"), 0);
	CU_ASSERT_EQUAL(xml_node_set_attr(n, NULL, NULL, "to", "b"), 0);
	CU_ASSERT_EQUAL(xml_node_set_attr(n, NULL, NULL, "type", "t"), 0);
	CU_ASSERT_EQUAL(xml_node_remove_attr(n, "type"), 1);
	CU_ASSERT_EQUAL(xml_node_remove_attr(n, "type"), 0);
	CU_ASSERT_EQUAL(xml_node_set_attr(n, "xml", NULL, "lang", "en"), 0);
	CU_ASSERT_EQUAL(xml_node_set_attr(n, "p", NULL, "x", "v"), -1);
	CU_ASSERT_EQUAL(xml_node_add_text(n, "k1", 2), 0);
	CU_ASSERT_EQUAL(xml_node_add_text(n, "k2&", 3), 0);
	CU_ASSERT_PTR_EQUAL(n->first_child, n->last_child);
	CU_ASSERT_STRING_EQUAL(xml_node_attr(n, "to"), "b");
	CU_ASSERT_PTR_NULL(xml_node_attr(n, "lang"));
	CU_ASSERT_STRING_EQUAL(xml_node_attr_ns(n, NS_XML, "lang"), "en");
	CU_ASSERT(xml_node_is(n, "result", NS_DIALBACK));
	CU_ASSERT(!xml_node_is(n, "result", NS_SERVER));
	t = xml_node_text(n, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_STRING_EQUAL(t, "k1k2&");
	CU_ASSERT_EQUAL(len, 5);
	free(t);
	check_ser(n, NS_SERVER, "<db:result xmlns:db='jabber:server:dialback' "
	    "from='a' to='b' xml:lang='en'>k1k2&amp;</db:result>");

	/* removing every attribute of a node with room reserved, then adding */
	c = xml_node_new(NULL, "m", NS_SERVER);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(xml_node_reserve_attrs(c, 4), 0);
	CU_ASSERT_EQUAL(xml_node_set_attr(c, NULL, NULL, "to", "x"), 0);
	CU_ASSERT_EQUAL(xml_node_remove_attr(c, "to"), 1);
	CU_ASSERT_EQUAL(xml_node_set_attr(c, NULL, NULL, "from", "y"), 0);
	CU_ASSERT_EQUAL(xml_node_set_attr(c, NULL, NULL, "id", "z"), 0);
	check_ser(c, NS_SERVER, "<m from='y' id='z'/>");
	xml_node_free(c);

	c = xml_node_add_child(n, NULL, "error", NS_SERVER);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(xml_node_set_attr(c, NULL, NULL, "type", "cancel"), 0);
	CU_ASSERT_PTR_NOT_NULL(xml_node_add_child(c, NULL, "item-not-found",
	    NS_STANZA_ERRORS));
	CU_ASSERT_PTR_EQUAL(xml_node_first_element(n), c);
	CU_ASSERT_PTR_EQUAL(xml_node_child(n, "error", NS_SERVER), c);
	CU_ASSERT_PTR_NULL(xml_node_child(n, "error", NS_DIALBACK));
	CU_ASSERT_PTR_NOT_NULL(xml_node_child(c, "item-not-found", NULL));
	check_ser(n, NS_SERVER, "<db:result xmlns:db='jabber:server:dialback' "
	    "from='a' to='b' xml:lang='en'>k1k2&amp;<error type='cancel'>"
	    "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	    "</error></db:result>");

	copy = xml_node_copy(n);
	CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
	check_ser(copy, NS_COMPONENT, "<db:result xmlns:db='jabber:server:dialback' "
	    "from='a' to='b' xml:lang='en'>k1k2&amp;<error xmlns='jabber:server' "
	    "type='cancel'><item-not-found "
	    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>");
	xml_node_free(copy);

	/* freeing a child unlinks it */
	xml_node_free(c);
	CU_ASSERT_PTR_NULL(xml_node_first_element(n));
	check_ser(n, NS_SERVER, "<db:result xmlns:db='jabber:server:dialback' "
	    "from='a' to='b' xml:lang='en'>k1k2&amp;</db:result>");

	/* over the buffer's limit: -1 and nothing appended */
	strbuf_init(&sb, 40);
	CU_ASSERT_EQUAL(strbuf_appends(&sb, "keep"), 0);
	CU_ASSERT_EQUAL(xml_serialize(n, NS_SERVER, &sb), -1);
	CU_ASSERT_STRING_EQUAL(sb.data, "keep");
	strbuf_free(&sb);
	xml_node_free(n);

	/* empty elements, control characters, a prefix without namespace */
	n = xml_node_new(NULL, "x", "urn:x");
	CU_ASSERT_PTR_NOT_NULL_FATAL(n);
	check_ser(n, NS_SERVER, "<x xmlns='urn:x'/>");
	check_ser(n, "urn:x", "<x/>");
	CU_ASSERT_EQUAL(xml_node_add_text(n, "a\x01", 2), 0);
	strbuf_init(&sb, 0);
	CU_ASSERT_EQUAL(xml_serialize(n, NS_SERVER, &sb), -1);
	CU_ASSERT_EQUAL(sb.len, 0);
	strbuf_free(&sb);
	xml_node_free(n);
	n = xml_node_new("p", "x", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(n);
	strbuf_init(&sb, 0);
	CU_ASSERT_EQUAL(xml_serialize(n, NS_SERVER, &sb), -1);
	strbuf_free(&sb);
	xml_node_free(n);
	CU_ASSERT_PTR_NULL(xml_node_new(NULL, "", NULL));

	strbuf_init(&sb, 0);
	CU_ASSERT_EQUAL(xml_escape(&sb, "<&>'\"\tz", 7), 0);
	CU_ASSERT_STRING_EQUAL(sb.data, "&lt;&amp;&gt;&apos;&quot;\tz");
	CU_ASSERT_EQUAL(xml_escape(&sb, "ok&\x1f", 4), -1);
	CU_ASSERT_STRING_EQUAL(sb.data, "&lt;&amp;&gt;&apos;&quot;\tz");
	strbuf_free(&sb);
}

/* The bytes a stanza arrived as are handed out when they mean the same in
 * any stream, at every chunk size and across stops; otherwise NULL. */
static void
test_stream_raw(void)
{
	static const char data[] = HDR_NODB
	    "<message from='a@p2.test' to='b@p1.test'><body>x &amp; y</body></message>\n "
	    "<iq type='get' id='1' from='p2.test' to='p1.test'><ping xmlns='urn:xmpp:ping'/></iq>"
	    "<message xmlns='jabber:server' to='b@p1.test' from='a@p2.test'/>"
	    "<presence from='a@p2.test' to='b@p1.test'><stream:x/></presence>"
	    "<presence from='a@p2.test' to='b@p1.test' xmlns:q='urn:q'><q:x q:y='1'/></presence>"
	    "<message from='a@p2.test' to='b@p1.test'><x xmlns='jabber:client'/></message>"
	    "<db:result xmlns:db='jabber:server:dialback' from='p2.test' to='p1.test'>k</db:result>"
	    "<message from='a@p2.test' to='b@p1.test'><a xmlns:stream='urn:s'><stream:y/></a>"
	    "<stream:y/></message>";
	static const char *raw[] = {
	    "<message from='a@p2.test' to='b@p1.test'><body>x &amp; y</body></message>",
	    "<iq type='get' id='1' from='p2.test' to='p1.test'><ping xmlns='urn:xmpp:ping'/></iq>",
	    NULL,	/* its own default namespace on top */
	    NULL,	/* a prefix bound on the stream header */
	    "<presence from='a@p2.test' to='b@p1.test' xmlns:q='urn:q'><q:x q:y='1'/></presence>",
	    NULL,	/* a content namespace named inside */
	    NULL,	/* prefixed */
	    NULL,	/* the header's prefix, once out of the inner declaration's scope */
	};
	/* what the trees look like, shallow and whole */
	static const char *shallow_trees[] = {
	    "<message from='a@p2.test' to='b@p1.test'/>",
	    "<iq type='get' id='1' from='p2.test' to='p1.test'/>",
	};
	const size_t nstanzas = ARRAY_SIZE(raw);
	size_t len = sizeof(data) - 1, chunk;
	int stop, shallow;
	char *whole;
	bool ok = true;
	unsigned long before = hibernations;

	/* the whole trees, as a stream that is not shallow builds them */
	whole = run_stream(data, len, len, false);
	for (shallow = 0; shallow <= 2; shallow++) {
		/* 2: shallow, and the parser hibernating whenever it can */
		hibernate_feeds = shallow == 2;
		for (stop = 0; stop <= 1; stop++) {
			for (chunk = 1; chunk <= len && ok; chunk++) {
				struct rec r;
				size_t pos, found = 0;
				const char *p, *t, *wt = whole;

				rec_init(&r, NULL);
				xml_stream_set_shallow(r.xs, shallow >= 1);
				r.log_raw = true;
				r.stop_all = stop == 1;
				(void)feed_chunks(&r, data, len, chunk, true, &pos);
				for (p = r.log.data; p != NULL && (p = strstr(p, "\nR ")) != NULL; p += 3) {
					const char *want = found < nstanzas ? raw[found] : "";
					size_t n = strcspn(p + 3, "\n"), tn;
					if (want == NULL)
						want = "-";
					if (n != strlen(want) || strncmp(p + 3, want, n) != 0) {
						fprintf(stderr, "\nchunk %zu stop %d stanza %zu: %.*s\n", chunk, stop,
						    found, (int)n, p + 3);
						ok = false;
					}
					/* the tree logged just before: shallow when handed
					 * out as bytes, else whole */
					for (t = p; t > r.log.data && strncmp(t, "T ", 2) != 0; t--)
						;
					tn = strcspn(t, "\n");
					wt = strstr(wt, "\nT ") + 1;
					if (shallow >= 1 && raw[found] != NULL && found < ARRAY_SIZE(shallow_trees) &&
					    (tn != strlen(shallow_trees[found]) + 2 ||
					    strncmp(t + 2, shallow_trees[found], tn - 2) != 0))
						ok = false;
					if ((shallow == 0 || raw[found] == NULL) &&
					    (strncmp(t, wt, tn) != 0 || wt[tn] != '\n'))
						ok = false;
					if (!ok)
						fprintf(stderr, "\nchunk %zu stop %d shallow %d stanza %zu tree: %.*s\n",
						    chunk, stop, shallow, found, (int)tn, t);
					found++;
				}
				if (found != nstanzas || pos != len || r.nerr != 0)
					ok = false;
				rec_fini(&r);
			}
		}
	}
	hibernate_feeds = false;
	free(whole);
	CU_ASSERT(ok);
	/* it did hibernate, between stanzas */
	CU_ASSERT(hibernations > before);
}

/* With on_raw_stanza, a stanza whose bytes stand alone comes as its head
 * and bytes, no tree; one that does not, or one the callback declines,
 * comes to on_stanza whole. The same at every chunk size, stopping after
 * every event or not, hibernating whenever possible or not. */
static void
test_stream_raw_head(void)
{
	static const char data[] = HDR_NODB
	    "<message from='a@p2.test' to='b@p1.test'><body>x &amp; y</body></message>\n "
	    "<iq type='get' id='1' from='p2.test' to='p1.test'><ping xmlns='urn:xmpp:ping'/></iq>"
	    "<message xmlns='jabber:server' to='b@p1.test' from='a@p2.test'/>"
	    "<presence from='a@p2.test' to='b@p1.test'><stream:x/></presence>"
	    "<message from='a&amp;b@p2.test' to='b@p1.test/r&apos;s' type='chat' id='m&lt;1' "
	    "xmlns:x='urn:x' x:from='not this' xml:lang='en'><x:body>hi</x:body></message>"
	    "<db:result xmlns:db='jabber:server:dialback' from='p2.test' to='p1.test'>k</db:result>"
	    "<presence/>";
	static const char expect[] = EV_NODB
	    "H {jabber:server}message from='a@p2.test' to='b@p1.test' type=- id=-\n"
	    "R <message from='a@p2.test' to='b@p1.test'><body>x &amp; y</body></message>\n"
	    "H {jabber:server}iq from='p2.test' to='p1.test' type='get' id='1'\n"
	    "R <iq type='get' id='1' from='p2.test' to='p1.test'><ping xmlns='urn:xmpp:ping'/></iq>\n"
	    "T <message to='b@p1.test' from='a@p2.test'/>\n"
	    "T <presence from='a@p2.test' to='b@p1.test'><stream:x/></presence>\n"
	    "H {jabber:server}message from='a&b@p2.test' to='b@p1.test/r's' type='chat' id='m<1'\n"
	    "R <message from='a&amp;b@p2.test' to='b@p1.test/r&apos;s' type='chat' id='m&lt;1' "
	    "xmlns:x='urn:x' x:from='not this' xml:lang='en'><x:body>hi</x:body></message>\n"
	    "T <db:result xmlns:db='jabber:server:dialback' from='p2.test' to='p1.test'>k</db:result>\n"
	    "H {jabber:server}presence from=- to=- type=- id=-\n"
	    "R <presence/>\n";
	size_t len = sizeof(data) - 1, chunk;
	int stop, hib;
	bool ok = true;
	struct rec r;
	char *whole, *declined;

	for (hib = 0; hib <= 1; hib++) {
		hibernate_feeds = hib == 1;
		for (stop = 0; stop <= 1; stop++) {
			for (chunk = 1; chunk <= len && ok; chunk++) {
				head_streams = true;
				rec_init(&r, NULL);
				head_streams = false;
				xml_stream_set_shallow(r.xs, true);
				r.stop_all = stop == 1;
				(void)feed_chunks(&r, data, len, chunk, true, NULL);
				strip_stops(r.log.data);
				if (r.nerr != 0 || strcmp(r.log.data, expect) != 0) {
					fprintf(stderr, "\nchunk %zu stop %d hibernate %d:\n%s\n", chunk,
					    stop, hib, r.log.data);
					ok = false;
				}
				rec_fini(&r);
			}
		}
	}
	hibernate_feeds = false;
	CU_ASSERT(ok);

	/* declined: the same trees a stream that is not shallow builds */
	whole = run_stream(data, len, len, false);
	head_streams = true;
	rec_init(&r, NULL);
	head_streams = false;
	xml_stream_set_shallow(r.xs, true);
	r.decline_raw = true;
	CU_ASSERT_EQUAL(feed_chunks(&r, data, len, 7, true, NULL), XS_FEED_OK);
	declined = strbuf_steal(&r.log, NULL);
	CU_ASSERT_STRING_EQUAL(declined, whole);
	free(declined);
	free(whole);
	rec_fini(&r);
}

/* Hibernation only between stanzas, and a woken parser keeps the
 * header's prefixes, limits and the stream's end. */
static enum xml_feed_result
feed_str(struct xml_stream *xs, const char *s)
{
	return xml_stream_feed(xs, s, strlen(s), NULL);
}

static void
test_stream_hibernate(void)
{
	static const char hdr[] = HDR_PROSODY;
	struct rec r;

	rec_init(&r, &small_limits);
	CU_ASSERT_FALSE(xml_stream_hibernate(r.xs));	/* no header yet */
	CU_ASSERT_EQUAL(feed_str(r.xs, hdr), XS_FEED_OK);
	CU_ASSERT_TRUE(xml_stream_hibernate(r.xs));
	CU_ASSERT_FALSE(xml_stream_hibernate(r.xs));	/* already */
	CU_ASSERT_EQUAL(feed_str(r.xs, "<message><bo"), XS_FEED_OK);
	CU_ASSERT_FALSE(xml_stream_hibernate(r.xs));	/* inside a stanza */
	CU_ASSERT_EQUAL(feed_str(r.xs, "dy>x</body></message> <db:result from='a' to='b'>k</db:result>"), XS_FEED_OK);
	CU_ASSERT_TRUE(xml_stream_hibernate(r.xs));
	/* the header's db prefix still holds; a child limit still holds */
	CU_ASSERT_EQUAL(feed_str(r.xs, "<db:verify id='1'/>"), XS_FEED_OK);
	CU_ASSERT_TRUE(xml_stream_hibernate(r.xs));
	CU_ASSERT_EQUAL(feed_str(r.xs, "<m><a/><b/><c/><d/><e/></m>"), XS_FEED_ERROR);
	CU_ASSERT_EQUAL(r.err, XS_ERR_POLICY_VIOLATION);
	CU_ASSERT_FALSE(xml_stream_hibernate(r.xs));	/* dead */
	CU_ASSERT_PTR_NOT_NULL(strstr(r.log.data, "T <message><body>x</body></message>\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.log.data, "T <db:result xmlns:db='jabber:server:dialback' from='a' to='b'>k</db:result>\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.log.data, "T <db:verify xmlns:db='jabber:server:dialback' id='1'/>\n"));
	rec_fini(&r);

	/* the end of the stream, and an unbound prefix, after waking */
	rec_init(&r, NULL);
	CU_ASSERT_EQUAL(feed_str(r.xs, hdr), XS_FEED_OK);
	CU_ASSERT_TRUE(xml_stream_hibernate(r.xs));
	CU_ASSERT_EQUAL(feed_str(r.xs, "</stream:stream>"), XS_FEED_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.log.data, "\nE\n"));
	rec_fini(&r);
	rec_init(&r, NULL);
	CU_ASSERT_EQUAL(feed_str(r.xs, hdr), XS_FEED_OK);
	CU_ASSERT_TRUE(xml_stream_hibernate(r.xs));
	CU_ASSERT_EQUAL(feed_str(r.xs, "<q:x/>"), XS_FEED_ERROR);
	CU_ASSERT_EQUAL(r.err, XS_ERR_BAD_NAMESPACE_PREFIX);
	rec_fini(&r);
	/* reset after hibernating: a new document */
	rec_init(&r, NULL);
	CU_ASSERT_EQUAL(feed_str(r.xs, hdr), XS_FEED_OK);
	CU_ASSERT_TRUE(xml_stream_hibernate(r.xs));
	CU_ASSERT_EQUAL(xml_stream_reset(r.xs), 0);
	CU_ASSERT_EQUAL(feed_str(r.xs, HDR_NODB "<a/>"), XS_FEED_OK);
	CU_ASSERT_EQUAL(r.nerr, 0);
	rec_fini(&r);
}

static void
test_error_conditions(void)
{
	CU_ASSERT_STRING_EQUAL(xml_stream_error_condition(XS_ERR_NOT_WELL_FORMED),
	    "not-well-formed");
	CU_ASSERT_STRING_EQUAL(xml_stream_error_condition(XS_ERR_RESTRICTED_XML),
	    "restricted-xml");
	CU_ASSERT_STRING_EQUAL(xml_stream_error_condition(XS_ERR_POLICY_VIOLATION),
	    "policy-violation");
	CU_ASSERT_STRING_EQUAL(xml_stream_error_condition(XS_ERR_BAD_NAMESPACE_PREFIX),
	    "bad-namespace-prefix");
	CU_ASSERT_STRING_EQUAL(xml_stream_error_condition(XS_ERR_UNSUPPORTED_ENCODING),
	    "unsupported-encoding");
	CU_ASSERT_STRING_EQUAL(xml_stream_error_condition(XS_ERR_INVALID_XML),
	    "invalid-xml");
	CU_ASSERT_STRING_EQUAL(xml_stream_error_condition(XS_ERR_RESOURCE_CONSTRAINT),
	    "resource-constraint");
}

static void
test_stream_new_args(void)
{
	struct xml_stream_limits lim = test_limits;

	lim.max_depth = 0;
	CU_ASSERT_PTR_NULL(xml_stream_new(&lim, &rec_cb, NULL));
	CU_ASSERT_PTR_NULL(xml_stream_new(NULL, &rec_cb, NULL));
	xml_stream_free(NULL);
}

#define SPAN(s) ((struct xml_span){ (s), sizeof(s) - 1 })
#define NO_SPAN ((struct xml_span){ NULL, 0 })

/* An element built in one block from unterminated spans, then changed:
 * replaced, added and removed attributes and a child (ASan and valgrind
 * in CI see any free of the block's own strings). */
static void
test_node_spans(void)
{
	/* spans into one buffer, as expat hands out names and values */
	static const char buf[] = "fromtoxmllangenjabber:serverdb";
	struct xml_attr_spans a[3] = {
		{ NO_SPAN, { buf, 4 }, NO_SPAN, SPAN("a@p.test") },
		{ NO_SPAN, { buf + 4, 2 }, NO_SPAN, SPAN("b.test") },
		{ { buf + 6, 3 }, { buf + 9, 4 }, SPAN(NS_XML), { buf + 13, 2 } },
	};
	struct xml_node *parent = xml_node_new(NULL, "iq", NS_SERVER), *n, *c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(parent);
	n = xml_node_new_spans(NULL, NO_SPAN, SPAN("message"), (struct xml_span){ buf + 15, 13 }, a, 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(n);
	CU_ASSERT_STRING_EQUAL(n->name, "message");
	CU_ASSERT_STRING_EQUAL(n->ns, NS_SERVER);
	CU_ASSERT_PTR_NULL(n->prefix);
	CU_ASSERT_STRING_EQUAL(xml_node_attr(n, "from"), "a@p.test");
	CU_ASSERT_STRING_EQUAL(xml_node_attr(n, "to"), "b.test");
	CU_ASSERT_STRING_EQUAL(xml_node_attr_ns(n, NS_XML, "lang"), "en");
	check_ser(n, NS_SERVER, "<message from='a@p.test' to='b.test' xml:lang='en'/>");
	CU_ASSERT_EQUAL(xml_node_set_attr(n, NULL, NULL, "to", "c.test"), 0);	/* replaced */
	CU_ASSERT_EQUAL(xml_node_set_attr(n, NULL, NULL, "id", "1"), 0);	/* array moves out */
	CU_ASSERT_EQUAL(xml_node_remove_attr(n, "from"), 1);
	CU_ASSERT_PTR_NOT_NULL(xml_node_add_child(n, NULL, "body", NS_SERVER));
	check_ser(n, NS_SERVER, "<message to='c.test' xml:lang='en' id='1'><body/></message>");
	xml_node_free(n);

	/* a prefixed child appended to a parent; no attributes; every attribute removed */
	c = xml_node_new_spans(parent, SPAN("db"), SPAN("result"), SPAN(NS_DIALBACK), NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_EQUAL(xml_node_first_element(parent), c);
	CU_ASSERT_STRING_EQUAL(c->prefix, "db");
	n = xml_node_new_spans(parent, NO_SPAN, SPAN("x"), NO_SPAN, a, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(n);
	CU_ASSERT_STRING_EQUAL(n->ns, "");
	CU_ASSERT_EQUAL(xml_node_remove_attr(n, "from"), 1);
	CU_ASSERT_EQUAL(xml_node_set_attr(n, NULL, NULL, "to", "d"), 0);
	CU_ASSERT_STRING_EQUAL(xml_node_attr(n, "to"), "d");
	xml_node_free(parent);

	/* refused: no name, a prefixed attribute without its namespace */
	CU_ASSERT_PTR_NULL(xml_node_new_spans(NULL, NO_SPAN, NO_SPAN, NO_SPAN, NULL, 0));
	a[0].prefix = SPAN("p");
	CU_ASSERT_PTR_NULL(xml_node_new_spans(NULL, NO_SPAN, SPAN("m"), NO_SPAN, a, 1));
}

/* The hostile-input cases; shallow_too: run again on shallow streams. */
static const struct {
	const char *name;
	CU_TestFunc fn;
	bool shallow_too;
} hostile_tests[] = {
	{ "test_hostile_dtd", test_hostile_dtd, true },
	{ "test_hostile_billion_laughs", test_hostile_billion_laughs, true },
	{ "test_hostile_deep_nesting", test_hostile_deep_nesting, true },
	{ "test_hostile_big_text", test_hostile_big_text, true },
	{ "test_hostile_big_attribute", test_hostile_big_attribute, true },
	{ "test_stanza_size_boundary", test_stanza_size_boundary, true },
	{ "test_hostile_invalid_utf8", test_hostile_invalid_utf8, true },
	{ "test_hostile_unbound_prefix", test_hostile_unbound_prefix, true },
	{ "test_hostile_comment_pi", test_hostile_comment_pi, true },
	{ "test_hostile_attrs_children", test_hostile_attrs_children, true },
	{ "test_hostile_header", test_hostile_header, false },
	{ "test_keepalive_flood", test_keepalive_flood, false },
	{ "test_reset_after_error", test_reset_after_error, false },
	{ "test_hostile_encoding", test_hostile_encoding, false },
	{ "test_hostile_misc", test_hostile_misc, true },
};

int
test_register(void)
{
	CU_pSuite s;
	size_t i, j;

	if ((s = CU_add_suite("xmlnode", NULL, NULL)) == NULL)
		return CU_get_error();
	TEST_ADD(s, test_ser_build);
	TEST_ADD(s, test_ser_dialback);
	TEST_ADD(s, test_ser_escaping);
	TEST_ADD(s, test_ser_namespaces);
	TEST_ADD(s, test_node_spans);

	if ((s = CU_add_suite("xmlstream", NULL, NULL)) == NULL)
		return CU_get_error();
	TEST_ADD(s, test_error_conditions);
	TEST_ADD(s, test_stream_new_args);
	TEST_ADD(s, test_stream_prosody_header);
	TEST_ADD(s, test_stream_features);
	TEST_ADD(s, test_stream_dialback_header_prefix);
	TEST_ADD(s, test_stream_dialback_element_prefix);
	TEST_ADD(s, test_stream_multiplexed);
	TEST_ADD(s, test_stream_keepalive_end);
	TEST_ADD(s, test_stream_legacy);
	TEST_ADD(s, test_stream_session);
	TEST_ADD(s, test_stream_starttls_restart);
	TEST_ADD(s, test_stream_stop_after_header);
	TEST_ADD(s, test_stream_resume_rules);
	TEST_ADD(s, test_stream_free_in_callback);
	TEST_ADD(s, test_stream_raw);
	TEST_ADD(s, test_stream_raw_head);
	TEST_ADD(s, test_stream_hibernate);

	/* the hostile inputs on whole trees, then again with shallow stanzas
	 * and with stanzas taken as head and bytes (the stream-level cases
	 * need no second run) */
	for (i = 0; i < 3; i++) {
		s = i == 0 ? CU_add_suite("xmlstream-hostile", NULL, NULL) :
		    i == 1 ? CU_add_suite("xmlstream-hostile-shallow", shallow_on, shallow_off) :
		    CU_add_suite("xmlstream-hostile-head", head_on, shallow_off);
		if (s == NULL)
			return CU_get_error();
		for (j = 0; j < ARRAY_SIZE(hostile_tests); j++) {
			if (i >= 1 && !hostile_tests[j].shallow_too)
				continue;
			if (CU_add_test(s, hostile_tests[j].name, hostile_tests[j].fn) == NULL)
				return CU_get_error();
		}
	}
	return CUE_SUCCESS;
}
