/* xmlstream.c - an XMPP stream on expat: a bounded push parser that
 * reports the stream header, whole depth-1 elements and the stream end.
 *
 * Positions are byte offsets from the start of the current document (they
 * restart at 0 after xml_stream_reset), the same unit as expat's
 * XML_GetCurrentByteIndex. The stanza and header limits are enforced twice:
 * in the handlers, and in xml_stream_feed, which never hands expat more
 * bytes than the open stanza (or the pending header) may still grow by.
 * The second check matters because expat reports a start tag only once
 * the whole tag has arrived. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <expat.h>

#include "util.h"
#include "xmlstream.h"
#include "zone.h"

/* Separates URI, local name and prefix in expat's expanded names. The byte
 * 0xFF never occurs in UTF-8, so no URI or name can contain it. */
#define NS_SEP		'\xff'

/* A text buffer grown past this by one big stanza is released afterwards
 * rather than kept for the life of the connection. */
#define TEXT_KEEP	8192

enum xs_state {
	XS_PROLOG,		/* before the header tag */
	XS_OPEN,		/* inside <stream:stream> */
	XS_ENDED,		/* after </stream:stream> */
};

struct scope_decl {
	char		*prefix;
	unsigned	 depth;		/* of the element declaring it */
};

/* The fields of struct xml_stanza_head, in order. */
enum { HEAD_NS, HEAD_NAME, HEAD_FROM, HEAD_TO, HEAD_TYPE, HEAD_ID, HEAD_FIELDS };
#define HEAD_ABSENT	SIZE_MAX
/* A head is copied from its start tag, plus a content namespace name. */
#define HEAD_BUF_MAX(lim)	((lim)->max_stanza_bytes + 64)

struct xml_stream {
	XML_Parser		 p;
	struct xml_stream_limits lim;
	struct xml_stream_callbacks cb;
	void			*ctx;

	enum xs_state		 state;
	unsigned		 depth;		/* open elements, header included */
	uint64_t		 fed;		/* bytes handed to expat */
	uint64_t		 header_base;	/* where the header may start */
	uint64_t		 mark;		/* end of the last stream-level event */
	uint64_t		 stanza_start;	/* offset of the open stanza's '<' */
	uint64_t		 stop_off;	/* end of the element that stopped us */

	struct xml_node		*stanza;	/* open depth-1 element */
	struct xml_node		*cur;		/* innermost open element in it */
	unsigned		*nchild;	/* children so far, per open level */
	size_t			 nchild_cap;
	struct strbuf		 text;		/* character data not yet in cur */
	struct xml_nsdecl	*pend_ns;	/* declarations for the next element */
	size_t			 n_pend_ns, pend_ns_cap;

	/* The bytes fed since the last stream-level event, so that a stanza
	 * can be passed on as it arrived instead of serialized again. */
	struct strbuf		 raw;
	uint64_t		 raw_base;	/* document offset of raw.data[0] */
	bool			 raw_ok;	/* the open stanza's bytes stand alone */
	const char		*raw_stanza;	/* during on_stanza: its bytes */
	size_t			 raw_stanza_len;
	struct scope_decl	*scope;		/* prefixes declared inside the stanza */
	size_t			 n_scope, scope_cap;
	struct xml_nsdecl	*hdr_ns;	/* the header's declarations */
	size_t			 n_hdr_ns;

	/* Hibernation: an idle stream between stanzas gives its expat
	 * parser back; the next bytes go to a new parser that first reads
	 * a copy of the header's name and declarations (not reported). */
	char			*hdr_qname;	/* the header's name as written */
	int64_t			 shift;		/* document offset - expat's offset */
	bool			 rehydrating;	/* the copy of the header is parsed */

	/* Shallow stanzas: message, presence and iq whose bytes stand alone
	 * get a tree of their top element only (children are checked
	 * against the limits, not built); the bytes carry the rest. */
	bool			 shallow_ok;	/* xml_stream_set_shallow */
	bool			 shallow;	/* the open stanza is shallow */
	bool			 text_pending;	/* shallow: text since the last tag */
	uint64_t		 tag_end;	/* shallow: end of the last tag seen */
	/* For on_raw_stanza: the head's strings, copied from the start tag
	 * (expat's own do not outlive it), NUL-separated, found by offset. */
	char			*head;
	size_t			 head_cap;
	size_t			 head_off[HEAD_FIELDS];	/* HEAD_ABSENT: no such field */

	enum xml_stream_error	 err;
	char			 detail[160];

	bool			 busy;		/* inside xml_stream_feed */
	bool			 in_parse;	/* inside an expat call */
	bool			 stop_req;	/* a callback asked to stop */
	bool			 suspended;	/* expat holds bytes past stop_off */
	bool			 dead;		/* an error was reported */
	bool			 dying;		/* freed from a callback */
};

static void
xs_fail(struct xml_stream *xs, enum xml_stream_error err, const char *detail)
{
	if (xs->err != XS_ERR_NONE)
		return;
	xs->err = err;
	(void)util_strlcpy(xs->detail, detail, sizeof(xs->detail));
	/* Fails only when the parser is already stopped, which is fine. */
	if (xs->in_parse)
		(void)XML_StopParser(xs->p, XML_FALSE);
}

/* True when handlers must ignore events (expat may deliver a few more
 * after XML_StopParser). */
static void XMLCALL on_chars(void *ud, const XML_Char *s, int len);

static bool
xs_halted(const struct xml_stream *xs)
{
	return xs->err != XS_ERR_NONE || xs->dying;
}

/* Inside a stanza (whose tree may not be built: see on_raw_stanza). */
static bool
xs_in_stanza(const struct xml_stream *xs)
{
	return xs->state == XS_OPEN && xs->depth > 1;
}

static uint64_t
ev_start(const struct xml_stream *xs)
{
	XML_Index i = XML_GetCurrentByteIndex(xs->p);

	if (i < 0 || (int64_t)i + xs->shift < 0)
		return 0;
	return (uint64_t)((int64_t)i + xs->shift);
}

/* Where the current event ends, given where it starts. */
static uint64_t
ev_end_from(const struct xml_stream *xs, uint64_t start)
{
	int n = XML_GetCurrentByteCount(xs->p);

	return start + (n > 0 ? (uint64_t)n : 0);
}

static uint64_t
ev_end(const struct xml_stream *xs)
{
	return ev_end_from(xs, ev_start(xs));
}

static bool
is_xml_space(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	}
	return true;
}

/* Frees the strings of n declarations (not the array). */
static void
nsdecls_clear(struct xml_nsdecl *d, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		zone_free(d[i].prefix);
		zone_free(d[i].uri);
	}
}

static void
pend_ns_clear(struct xml_stream *xs)
{
	nsdecls_clear(xs->pend_ns, xs->n_pend_ns);
	xs->n_pend_ns = 0;
}

static bool
is_content_ns(const char *uri)
{
	return strcmp(uri, "jabber:server") == 0 ||
	    strcmp(uri, "jabber:client") == 0 ||
	    strcmp(uri, "jabber:component:accept") == 0;
}

/* The prefix of an expanded name "uri SEP local SEP prefix", or NULL. */
static const char *
expanded_prefix(const XML_Char *s)
{
	const char *a = strchr(s, NS_SEP), *b;

	if (a == NULL || (b = strchr(a + 1, NS_SEP)) == NULL)
		return NULL;
	return b + 1;
}

static bool
prefix_in_scope(const struct xml_stream *xs, const char *prefix)
{
	size_t i;

	if (strcmp(prefix, "xml") == 0)
		return true;
	for (i = 0; i < xs->n_scope; i++) {
		if (strcmp(xs->scope[i].prefix, prefix) == 0)
			return true;
	}
	return false;
}

static void
scope_pop(struct xml_stream *xs, unsigned depth)
{
	while (xs->n_scope > 0 && xs->scope[xs->n_scope - 1].depth >= depth)
		zone_free(xs->scope[--xs->n_scope].prefix);
}

/* The parts of expat's expanded name "uri SEP local [SEP prefix]" or
 * "local", pointing into it. */
static void
qname_spans(const XML_Char *s, struct xml_span *ns, struct xml_span *local,
    struct xml_span *prefix)
{
	const char *a = strchr(s, NS_SEP), *b;

	*ns = *prefix = (struct xml_span){ NULL, 0 };
	if (a == NULL) {
		*local = (struct xml_span){ s, strlen(s) };
		return;
	}
	*ns = (struct xml_span){ s, (size_t)(a - s) };
	a++;
	if ((b = strchr(a, NS_SEP)) == NULL) {
		*local = (struct xml_span){ a, strlen(a) };
		return;
	}
	*local = (struct xml_span){ a, (size_t)(b - a) };
	*prefix = (struct xml_span){ b + 1, strlen(b + 1) };
}

/* An element's name and attributes as spans into expat's strings. The
 * attributes sit on the stack unless there are more than fit (a raised
 * max_attrs). */
#define XS_ATTRS_ON_STACK 64
struct element_spans {
	struct xml_span		 ns, local, prefix;
	struct xml_attr_spans	*attrs;		/* stack, or heap */
	size_t			 n_attrs;
	struct xml_attr_spans	 stack[XS_ATTRS_ON_STACK];
};

static int
element_spans(struct element_spans *e, const XML_Char *name, const XML_Char **atts,
    size_t nattrs)
{
	size_t i;

	e->attrs = e->stack;
	e->n_attrs = nattrs;
	if (nattrs > XS_ATTRS_ON_STACK && (e->attrs = calloc(nattrs, sizeof(*e->attrs))) == NULL)
		return -1;
	for (i = 0; i < nattrs; i++) {
		qname_spans(atts[2 * i], &e->attrs[i].ns, &e->attrs[i].name, &e->attrs[i].prefix);
		e->attrs[i].value = (struct xml_span){ atts[2 * i + 1], strlen(atts[2 * i + 1]) };
	}
	qname_spans(name, &e->ns, &e->local, &e->prefix);
	return 0;
}

static void
element_spans_free(struct element_spans *e)
{
	if (e->attrs != e->stack)
		free(e->attrs);
	e->attrs = e->stack;
}

/* Whether the bytes of the element starting now still let the stanza
 * mean the same in another stream whose default namespace is the
 * receiver's content namespace: the stanza is unprefixed and declares no
 * default of its own on top, nothing uses a prefix bound on the stream
 * header, and nothing names a content namespace explicitly (the
 * serializer would rewrite those). Records the element's declarations
 * in the stanza scope. */
static bool
raw_check_element(struct xml_stream *xs, const struct element_spans *e, unsigned depth)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < xs->n_pend_ns; i++) {
		const struct xml_nsdecl *d = &xs->pend_ns[i];
		if ((depth == 1 && d->prefix == NULL) || is_content_ns(d->uri))
			ok = false;
		if (d->prefix == NULL)
			continue;
		if (xs->n_scope == xs->scope_cap) {
			size_t cap = xs->scope_cap == 0 ? 4 : xs->scope_cap * 2;
			struct scope_decl *arr = zone_reallocarray(xs->scope, cap, sizeof(*arr));
			if (arr == NULL)
				return false;
			xs->scope = arr;
			xs->scope_cap = cap;
		}
		if ((xs->scope[xs->n_scope].prefix = zone_strdup(d->prefix)) == NULL)
			return false;
		xs->scope[xs->n_scope++].depth = depth;
	}
	/* a prefix is the last part of expat's name: NUL-terminated */
	if (e->prefix.p != NULL && (depth == 1 || !prefix_in_scope(xs, e->prefix.p)))
		ok = false;
	for (i = 0; i < e->n_attrs; i++) {
		if (e->attrs[i].prefix.p != NULL && !prefix_in_scope(xs, e->attrs[i].prefix.p))
			ok = false;
	}
	return ok;
}

/* Whether a stanza starting with this tag is built shallow. */
static bool
shallow_candidate(const XML_Char *name)
{
	const char *sep = strchr(name, NS_SEP), *local;
	size_t nslen;
	char ns[32];

	if (sep == NULL || expanded_prefix(name) != NULL)
		return false;
	local = sep + 1;
	nslen = (size_t)(sep - name);
	if (nslen >= sizeof(ns))
		return false;
	memcpy(ns, name, nslen);
	ns[nslen] = '\0';
	return is_content_ns(ns) && (strcmp(local, "message") == 0 ||
	    strcmp(local, "presence") == 0 || strcmp(local, "iq") == 0);
}

/* Drops captured bytes no stanza can need any more: everything before
 * the open stanza, or before the last stream-level event. */
static void
raw_compact(struct xml_stream *xs)
{
	uint64_t keep = xs_in_stanza(xs) ? xs->stanza_start : xs->mark;
	size_t drop;

	if (keep <= xs->raw_base)
		return;
	drop = (size_t)(keep - xs->raw_base);
	if (drop >= xs->raw.len) {
		/* an idle stream keeps no buffer */
		strbuf_free(&xs->raw);
		strbuf_init(&xs->raw, 0);
		xs->raw_base = keep;
		return;
	}
	memmove(xs->raw.data, xs->raw.data + drop, xs->raw.len - drop);
	xs->raw.len -= drop;
	xs->raw.data[xs->raw.len] = '\0';
	xs->raw_base = keep;
}

/* Builds an element, with the pending namespace declarations, as a child
 * of parent (or a root when NULL), in one allocation. NULL when out of
 * memory. */
static struct xml_node *
make_element(struct xml_stream *xs, struct xml_node *parent, const struct element_spans *e)
{
	struct xml_node *n;
	size_t i;

	n = xml_node_new_spans(parent, e->prefix, e->local, e->ns,
	    e->n_attrs > 0 ? e->attrs : NULL, e->n_attrs);
	if (n == NULL)
		return NULL;
	for (i = 0; i < xs->n_pend_ns; i++) {
		if (xml_node_add_nsdecl(n, xs->pend_ns[i].prefix,
		    xs->pend_ns[i].uri) == -1) {
			xml_node_free(n);	/* unlinks it from parent */
			return NULL;
		}
	}
	pend_ns_clear(xs);
	return n;
}

/* Which head field an unprefixed attribute fills, or -1. */
static int
head_attr_field(struct xml_span name)
{
	if (name.len == 2)
		return memcmp(name.p, "to", 2) == 0 ? HEAD_TO : memcmp(name.p, "id", 2) == 0 ? HEAD_ID : -1;
	if (name.len == 4)
		return memcmp(name.p, "from", 4) == 0 ? HEAD_FROM :
		    memcmp(name.p, "type", 4) == 0 ? HEAD_TYPE : -1;
	return -1;
}

/* Keeps what on_raw_stanza will need of a shallow stanza's start tag, in
 * one buffer grown once (this runs for nearly every stanza). */
static int
head_record(struct xml_stream *xs, const struct element_spans *e)
{
	struct xml_span v[HEAD_FIELDS];
	size_t need = 0, i;
	char *buf, *at;
	int f;

	for (i = 0; i < HEAD_FIELDS; i++)
		v[i] = (struct xml_span){ NULL, 0 };
	v[HEAD_NS] = e->ns.p != NULL ? e->ns : (struct xml_span){ "", 0 };
	v[HEAD_NAME] = e->local;
	for (i = 0; i < e->n_attrs; i++) {
		/* from, to, type and id are unqualified */
		if (e->attrs[i].ns.p == NULL && (f = head_attr_field(e->attrs[i].name)) != -1)
			v[f] = e->attrs[i].value;
	}
	for (i = 0; i < HEAD_FIELDS; i++)
		need += v[i].p != NULL ? v[i].len + 1 : 0;
	if (need > HEAD_BUF_MAX(&xs->lim))
		return -1;
	if (need > xs->head_cap) {
		if ((buf = zone_realloc(xs->head, need)) == NULL)
			return -1;
		xs->head = buf;
		xs->head_cap = need;
	}
	at = xs->head;
	for (i = 0; i < HEAD_FIELDS; i++) {
		if (v[i].p == NULL) {
			xs->head_off[i] = HEAD_ABSENT;
			continue;
		}
		memcpy(at, v[i].p, v[i].len);
		at[v[i].len] = '\0';
		xs->head_off[i] = (size_t)(at - xs->head);
		at += v[i].len + 1;
	}
	return 0;
}

static void
head_free(struct xml_stream *xs)
{
	zone_free(xs->head);
	xs->head = NULL;
	xs->head_cap = 0;
}

static const char *
head_field(const struct xml_stream *xs, int field)
{
	return xs->head_off[field] == HEAD_ABSENT ? NULL : xs->head + xs->head_off[field];
}

/* Moves buffered character data into the open element. */
static int
flush_text(struct xml_stream *xs)
{
	struct xml_node *last;
	unsigned *cnt;

	if (xs->text.len == 0)
		return 0;
	last = xs->cur->last_child;
	if (last == NULL || last->type != XML_NODE_TEXT) {
		cnt = &xs->nchild[xs->depth - 2];
		if (++*cnt > xs->lim.max_children) {
			xs_fail(xs, XS_ERR_POLICY_VIOLATION, "too many child nodes");
			return -1;
		}
	}
	if (xml_node_add_text(xs->cur, xs->text.data, xs->text.len) == -1) {
		xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT, "out of memory");
		return -1;
	}
	strbuf_reset(&xs->text);
	return 0;
}

/* Called after a user callback for the event that ends at end. */
static void
after_callback(struct xml_stream *xs, uint64_t end)
{
	if (xs->dying) {
		(void)XML_StopParser(xs->p, XML_FALSE);
		return;
	}
	if (!xs->stop_req)
		return;
	xs->stop_req = false;
	if (xs->suspended) {
		/* An event expat delivered after the stop (the end of an
		 * empty element): it ends where the stop did. */
		xs->stop_off = end;
		return;
	}
	if (XML_StopParser(xs->p, XML_TRUE) != XML_STATUS_OK) {
		xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT, "cannot suspend parser");
		return;
	}
	xs->suspended = true;
	xs->stop_off = end;
}

static int
header_keep_ns(struct xml_stream *xs, const struct xml_node *h)
{
	size_t i, len = strlen(h->name) + (h->prefix != NULL ? strlen(h->prefix) + 1 : 0) + 1;

	if ((xs->hdr_qname = zone_malloc(len)) == NULL)
		return -1;
	(void)snprintf(xs->hdr_qname, len, "%s%s%s", h->prefix != NULL ? h->prefix : "",
	    h->prefix != NULL ? ":" : "", h->name);
	if (h->n_nsdecls == 0)
		return 0;
	if ((xs->hdr_ns = zone_calloc(h->n_nsdecls, sizeof(*xs->hdr_ns))) == NULL)
		return -1;
	for (i = 0; i < h->n_nsdecls; i++) {
		const struct xml_nsdecl *d = &h->nsdecls[i];
		if ((d->prefix != NULL && (xs->hdr_ns[i].prefix = zone_strdup(d->prefix)) == NULL) ||
		    (xs->hdr_ns[i].uri = zone_strdup(d->uri)) == NULL) {
			xs->n_hdr_ns = i + 1;
			return -1;
		}
	}
	xs->n_hdr_ns = h->n_nsdecls;
	return 0;
}

static void
header_ns_clear(struct xml_stream *xs)
{
	nsdecls_clear(xs->hdr_ns, xs->n_hdr_ns);
	zone_free(xs->hdr_ns);
	xs->hdr_ns = NULL;
	xs->n_hdr_ns = 0;
	zone_free(xs->hdr_qname);
	xs->hdr_qname = NULL;
}

/* "<qname xmlns...='...'>": the header as a new parser must see it for
 * the stream's names to mean what they meant. */
static int
header_copy(const struct xml_stream *xs, const char *qname, struct strbuf *out)
{
	size_t i;

	if (strbuf_appends(out, "<") == -1 || strbuf_appends(out, qname) == -1)
		return -1;
	for (i = 0; i < xs->n_hdr_ns; i++) {
		const struct xml_nsdecl *d = &xs->hdr_ns[i];
		if (strbuf_appends(out, d->prefix == NULL ? " xmlns" : " xmlns:") == -1 ||
		    (d->prefix != NULL && strbuf_appends(out, d->prefix) == -1) ||
		    strbuf_appends(out, "='") == -1 ||
		    xml_escape(out, d->uri, strlen(d->uri)) == -1 ||
		    strbuf_appends(out, "'") == -1)
			return -1;
	}
	return strbuf_appends(out, ">");
}

/* The open stanza's captured bytes up to end, or NULL when capture
 * missed some of them. */
static const char *
raw_bytes(const struct xml_stream *xs, uint64_t end, size_t *len)
{
	if (xs->stanza_start < xs->raw_base || end - xs->raw_base > xs->raw.len)
		return NULL;
	*len = (size_t)(end - xs->stanza_start);
	return xs->raw.data + (xs->stanza_start - xs->raw_base);
}

/* The whole tree of a shallow stanza that turned out to need one: its
 * bytes parsed again under the header's declarations. NULL on failure. */
static struct xml_node *
reparse_stanza(const struct xml_stream *xs, const char *data, size_t len)
{
	struct xml_stream_limits lim = xs->lim;
	struct xml_node *n = NULL;
	struct strbuf hdr;

	strbuf_init(&hdr, 0);
	if (header_copy(xs, "x", &hdr) == 0) {
		lim.max_header_bytes = hdr.len + 1;
		n = xml_parse_stanza(hdr.data, hdr.len, data, len, &lim);
	}
	strbuf_free(&hdr);
	return n;
}

/* Counts the text run a shallow stanza saw since the last tag as a
 * child of the element at level (1-based inside the stanza). */
static int
shallow_count_text(struct xml_stream *xs, unsigned level, uint64_t tag_start, uint64_t tag_end)
{
	/* A shallow stanza gets no character data callbacks: bytes between
	 * two tags are text (comments and PIs are refused anyway). */
	if (tag_start > xs->tag_end)
		xs->text_pending = true;
	xs->tag_end = tag_end;
	if (!xs->text_pending)
		return 0;
	xs->text_pending = false;
	if (++xs->nchild[level - 1] > xs->lim.max_children) {
		xs_fail(xs, XS_ERR_POLICY_VIOLATION, "too many child nodes");
		return -1;
	}
	return 0;
}

static void XMLCALL
on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct xml_stream *xs = ud;
	struct element_spans e;
	struct xml_node *n;
	uint64_t start, end;
	size_t nattrs;
	unsigned *arr;
	size_t cap;

	if (xs_halted(xs))
		return;
	start = ev_start(xs);
	end = ev_end_from(xs, start);
	for (nattrs = 0; atts[2 * nattrs] != NULL; nattrs++)
		;
	/* namespace declarations are attributes on the wire */
	if (nattrs + xs->n_pend_ns > xs->lim.max_attrs) {
		xs_fail(xs, XS_ERR_POLICY_VIOLATION, "too many attributes");
		return;
	}

	if (xs->depth == 0 && xs->rehydrating) {
		/* the copy of the header: known, already reported */
		pend_ns_clear(xs);
		xs->depth = 1;
		return;
	}
	if (xs->depth == 0) {
		if (end - xs->header_base > xs->lim.max_header_bytes) {
			xs_fail(xs, XS_ERR_POLICY_VIOLATION, "stream header too large");
			return;
		}
		n = element_spans(&e, name, atts, nattrs) == 0 ? make_element(xs, NULL, &e) : NULL;
		element_spans_free(&e);
		if (n == NULL || header_keep_ns(xs, n) == -1) {
			xml_node_free(n);
			xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT, "out of memory");
			return;
		}
		xs->depth = 1;
		xs->state = XS_OPEN;
		xs->mark = end;
		if (xs->cb.on_stream_start != NULL)
			xs->cb.on_stream_start(xs->ctx, n);
		xml_node_free(n);
		after_callback(xs, end);
		return;
	}

	/* The new element's depth inside its stanza is xs->depth. */
	if (xs->depth > xs->lim.max_depth) {
		xs_fail(xs, XS_ERR_POLICY_VIOLATION, "elements nested too deep");
		return;
	}
	if (xs->depth == 1)
		xs->stanza_start = start;
	if (end - xs->stanza_start > xs->lim.max_stanza_bytes) {
		xs_fail(xs, XS_ERR_POLICY_VIOLATION, "stanza too large");
		return;
	}
	if (xs->nchild_cap < xs->depth) {
		cap = xs->nchild_cap == 0 ? 8 : xs->nchild_cap * 2;
		if (cap < xs->depth)
			cap = xs->depth;
		if ((arr = zone_reallocarray(xs->nchild, cap, sizeof(*arr))) == NULL) {
			xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT, "out of memory");
			return;
		}
		xs->nchild = arr;
		xs->nchild_cap = cap;
	}
	if (xs->depth > 1) {
		if (xs->shallow ? shallow_count_text(xs, xs->depth - 1, start, end) == -1 :
		    flush_text(xs) == -1)
			return;
		if (++xs->nchild[xs->depth - 2] > xs->lim.max_children) {
			xs_fail(xs, XS_ERR_POLICY_VIOLATION, "too many child nodes");
			return;
		}
	}
	if (xs->depth == 1) {
		scope_pop(xs, 1);
		xs->raw_ok = start >= xs->raw_base;
	}
	if (element_spans(&e, name, atts, nattrs) == -1) {
		element_spans_free(&e);
		xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT, "out of memory");
		return;
	}
	if (!raw_check_element(xs, &e, xs->depth))
		xs->raw_ok = false;
	if (xs->depth == 1) {
		xs->shallow = xs->shallow_ok && xs->raw_ok && shallow_candidate(name);
		if (xs->shallow) {
			/* its text is carried by the bytes: expat need not report it */
			XML_SetCharacterDataHandler(xs->p, NULL);
			xs->text_pending = false;
			xs->tag_end = end;
		}
	}
	if (xs->shallow && (xs->depth > 1 || xs->cb.on_raw_stanza != NULL)) {
		/* nothing to build: the bytes carry it */
		if (xs->depth == 1 && head_record(xs, &e) == -1) {
			element_spans_free(&e);
			xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT, "out of memory");
			return;
		}
		pend_ns_clear(xs);
	} else {
		n = make_element(xs, xs->cur, &e);
		if (n == NULL) {
			element_spans_free(&e);
			xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT, "out of memory");
			return;
		}
		if (xs->depth == 1)
			xs->stanza = n;
		xs->cur = n;
	}
	element_spans_free(&e);
	xs->nchild[xs->depth - 1] = 0;
	xs->depth++;
}

static void XMLCALL
on_end(void *ud, const XML_Char *name)
{
	struct xml_stream *xs = ud;
	struct xml_node *n;
	const char *raw;
	size_t raw_len = 0;
	uint64_t start, end;
	bool as_head;

	(void)name;
	if (xs_halted(xs))
		return;
	start = ev_start(xs);
	end = ev_end_from(xs, start);

	if (xs->depth == 1) {
		/* </stream:stream> */
		xs->depth = 0;
		xs->state = XS_ENDED;
		xs->mark = end;
		if (xs->cb.on_stream_end != NULL)
			xs->cb.on_stream_end(xs->ctx);
		after_callback(xs, end);
		return;
	}
	if (end - xs->stanza_start > xs->lim.max_stanza_bytes) {
		xs_fail(xs, XS_ERR_POLICY_VIOLATION, "stanza too large");
		return;
	}
	if (xs->shallow ? shallow_count_text(xs, xs->depth - 1, start, end) == -1 :
	    flush_text(xs) == -1)
		return;
	xs->depth--;
	scope_pop(xs, xs->depth);
	if (xs->depth > 1) {
		if (!xs->shallow)
			xs->cur = xs->cur->parent;
		return;
	}

	n = xs->stanza;
	xs->stanza = xs->cur = NULL;
	xs->mark = end;
	if (xs->text.cap > TEXT_KEEP) {
		strbuf_free(&xs->text);
		strbuf_init(&xs->text, xs->lim.max_stanza_bytes);
	}
	raw = raw_bytes(xs, end, &raw_len);
	as_head = xs->shallow && xs->cb.on_raw_stanza != NULL;
	if (xs->shallow && (!xs->raw_ok || raw == NULL)) {
		/* a child used the header's prefixes after all: build it whole */
		xml_node_free(n);
		n = raw != NULL ? reparse_stanza(xs, raw, raw_len) : NULL;
		if (n == NULL) {
			xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT, "out of memory");
			return;
		}
		as_head = false;
	}
	if (xs->shallow) {
		xs->shallow = false;
		XML_SetCharacterDataHandler(xs->p, on_chars);
	}
	if (as_head) {
		struct xml_stanza_head head = {
			head_field(xs, HEAD_NS), head_field(xs, HEAD_NAME),
			head_field(xs, HEAD_FROM), head_field(xs, HEAD_TO),
			head_field(xs, HEAD_TYPE), head_field(xs, HEAD_ID),
		};

		if (xs->cb.on_raw_stanza(xs->ctx, &head, raw, raw_len) || xs->dying) {
			/* one huge head does not stay with the stream */
			if (!xs->dying && xs->head_cap > TEXT_KEEP)
				head_free(xs);
			after_callback(xs, end);
			return;
		}
		/* declined: a whole tree after all */
		if (xs->head_cap > TEXT_KEEP)
			head_free(xs);
		if ((n = reparse_stanza(xs, raw, raw_len)) == NULL) {
			xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT, "out of memory");
			return;
		}
	}
	if (xs->raw_ok && raw != NULL) {
		xs->raw_stanza = raw;
		xs->raw_stanza_len = raw_len;
	}
	if (xs->cb.on_stanza != NULL)
		xs->cb.on_stanza(xs->ctx, n);
	else
		xml_node_free(n);
	xs->raw_stanza = NULL;
	xs->raw_stanza_len = 0;
	after_callback(xs, end);
}

static void XMLCALL
on_chars(void *ud, const XML_Char *s, int len)
{
	struct xml_stream *xs = ud;

	if (xs_halted(xs) || len <= 0)
		return;
	if (!xs_in_stanza(xs)) {
		/* Between stanzas only whitespace (keepalives) may appear.
		 * Other text is well-formed XML but not a valid stream: the
		 * stream element has element-only content. */
		if (!is_xml_space(s, (size_t)len)) {
			xs_fail(xs, XS_ERR_INVALID_XML, "text at stream level");
			return;
		}
		xs->mark = ev_end(xs);
		return;
	}
	/* expat reports text as it arrives: catch a huge text node early */
	if (ev_end(xs) - xs->stanza_start > xs->lim.max_stanza_bytes) {
		xs_fail(xs, XS_ERR_POLICY_VIOLATION, "stanza too large");
		return;
	}
	if (xs->shallow)
		xs->text_pending = true;
	else if (strbuf_append(&xs->text, s, (size_t)len) == -1)
		xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT, "out of memory");
}

static void XMLCALL
on_ns_start(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
	struct xml_stream *xs = ud;
	struct xml_nsdecl *arr, d;
	size_t cap;

	if (xs_halted(xs))
		return;
	if (xs->n_pend_ns + 1 > xs->lim.max_attrs) {
		xs_fail(xs, XS_ERR_POLICY_VIOLATION, "too many attributes");
		return;
	}
	if (xs->n_pend_ns == xs->pend_ns_cap) {
		cap = xs->pend_ns_cap == 0 ? 4 : xs->pend_ns_cap * 2;
		if ((arr = zone_reallocarray(xs->pend_ns, cap, sizeof(*arr))) == NULL)
			goto oom;
		xs->pend_ns = arr;
		xs->pend_ns_cap = cap;
	}
	d.prefix = NULL;
	/* expat passes NULL for xmlns='' (undeclaring the default) */
	if ((d.uri = zone_strdup(uri != NULL ? uri : "")) == NULL)
		goto oom;
	if (prefix != NULL && (d.prefix = zone_strdup(prefix)) == NULL) {
		zone_free(d.uri);
		goto oom;
	}
	xs->pend_ns[xs->n_pend_ns++] = d;
	return;
oom:
	xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT, "out of memory");
}

static void XMLCALL
on_xmldecl(void *ud, const XML_Char *version, const XML_Char *encoding,
    int standalone)
{
	struct xml_stream *xs = ud;

	(void)version;
	(void)standalone;
	if (xs_halted(xs))
		return;
	/* The parser reads UTF-8 whatever the declaration says, so refuse
	 * a document that claims another encoding (RFC 6120 §11.6). */
	if (encoding != NULL && strcasecmp(encoding, "UTF-8") != 0) {
		xs_fail(xs, XS_ERR_UNSUPPORTED_ENCODING, "encoding is not UTF-8");
		return;
	}
	xs->header_base = ev_end(xs);
}

/* RFC 6120 §11.1: no comments, processing instructions or DTDs. */
static void XMLCALL
on_comment(void *ud, const XML_Char *data)
{
	(void)data;
	xs_fail(ud, XS_ERR_RESTRICTED_XML, "comment");
}

static void XMLCALL
on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
	(void)target;
	(void)data;
	xs_fail(ud, XS_ERR_RESTRICTED_XML, "processing instruction");
}

static void XMLCALL
on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	xs_fail(ud, XS_ERR_RESTRICTED_XML, "DTD");
}

static void XMLCALL
on_entity(void *ud, const XML_Char *name, int is_pe, const XML_Char *value,
    int value_len, const XML_Char *base, const XML_Char *sysid,
    const XML_Char *pubid, const XML_Char *notation)
{
	(void)name;
	(void)is_pe;
	(void)value;
	(void)value_len;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	xs_fail(ud, XS_ERR_RESTRICTED_XML, "entity declaration");
}

static int parser_init(struct xml_stream *xs);

/* Registers handlers and a fresh salt on a new or reset parser, and
 * clears the document state. 0 on success. */
static int
xs_setup(struct xml_stream *xs)
{
	xml_node_free(xs->stanza);
	xs->stanza = xs->cur = NULL;
	pend_ns_clear(xs);
	strbuf_reset(&xs->text);
	xs->state = XS_PROLOG;
	xs->depth = 0;
	xs->fed = xs->header_base = xs->mark = 0;
	xs->stanza_start = xs->stop_off = 0;
	strbuf_free(&xs->raw);
	strbuf_init(&xs->raw, 0);
	xs->raw_base = 0;
	xs->raw_ok = false;
	xs->raw_stanza = NULL;
	xs->raw_stanza_len = 0;
	scope_pop(xs, 0);
	header_ns_clear(xs);
	xs->shallow = xs->text_pending = false;
	head_free(xs);
	xs->err = XS_ERR_NONE;
	xs->detail[0] = '\0';
	xs->stop_req = xs->suspended = xs->dead = false;
	xs->shift = 0;
	xs->rehydrating = false;
	return parser_init(xs);
}

/* Registers handlers and a fresh salt on a new or reset parser. 0 on
 * success; -1 marks the stream dead. */
static int
parser_init(struct xml_stream *xs)
{
	unsigned long salt;
	int rc = -1;

	/* A per-parser secret salt keeps attribute and namespace hash tables
	 * from being flooded with chosen collisions. */
	if (util_random_bytes(&salt, sizeof(salt)) == -1)
		goto out;
	if (XML_SetHashSalt(xs->p, salt) != 1)
		goto out;
	XML_SetUserData(xs->p, xs);
	XML_SetReturnNSTriplet(xs->p, XML_TRUE);	/* keep "db:" prefixes */
	XML_SetElementHandler(xs->p, on_start, on_end);
	XML_SetCharacterDataHandler(xs->p, on_chars);
	XML_SetNamespaceDeclHandler(xs->p, on_ns_start, NULL);
	XML_SetXmlDeclHandler(xs->p, on_xmldecl);
	XML_SetCommentHandler(xs->p, on_comment);
	XML_SetProcessingInstructionHandler(xs->p, on_pi);
	XML_SetStartDoctypeDeclHandler(xs->p, on_doctype);
	XML_SetEntityDeclHandler(xs->p, on_entity);
	if (XML_SetParamEntityParsing(xs->p, XML_PARAM_ENTITY_PARSING_NEVER) != 1)
		goto out;
#ifdef HAVE_XML_SETREPARSEDEFERRALENABLED
	/* Deferral would hold back callbacks on small feeds; the stanza byte
	 * cap bounds the reparsing it protects against. */
	if (XML_SetReparseDeferralEnabled(xs->p, XML_FALSE) != XML_TRUE)
		goto out;
#endif
	rc = 0;
out:
	util_wipe(&salt, sizeof(salt));
	if (rc == -1)
		xs->dead = true;
	return rc;
}

static bool
limits_valid(const struct xml_stream_limits *l)
{
	return l->max_stanza_bytes > 0 && l->max_depth > 0 &&
	    l->max_attrs > 0 && l->max_children > 0 && l->max_header_bytes > 0;
}

int
xml_stream_set_limits(struct xml_stream *xs, const struct xml_stream_limits *limits)
{
	if (limits == NULL || !limits_valid(limits)) {
		errno = EINVAL;
		return -1;
	}
	xs->lim = *limits;
	/* the text buffer's bound follows the stanza bound */
	xs->text.max = limits->max_stanza_bytes;
	return 0;
}

struct xml_stream *
xml_stream_new(const struct xml_stream_limits *limits,
    const struct xml_stream_callbacks *cb, void *ctx)
{
	struct xml_stream *xs;

	if (limits == NULL || cb == NULL || !limits_valid(limits)) {
		errno = EINVAL;
		return NULL;
	}
	if ((xs = zone_calloc(1, sizeof(*xs))) == NULL)
		return NULL;
	xs->lim = *limits;
	xs->cb = *cb;
	xs->ctx = ctx;
	/* Text never outgrows its stanza (entities only shrink). */
	strbuf_init(&xs->text, limits->max_stanza_bytes);
	/* Forcing UTF-8 makes expat ignore the declared encoding, which
	 * on_xmldecl checks instead. */
	if ((xs->p = XML_ParserCreateNS("UTF-8", NS_SEP)) == NULL)
		goto fail;
	if (xs_setup(xs) == -1)
		goto fail;
	return xs;
fail:
	if (xs->p != NULL)
		XML_ParserFree(xs->p);
	strbuf_free(&xs->text);
	zone_free(xs);
	return NULL;
}

static void
xs_destroy(struct xml_stream *xs)
{
	xml_node_free(xs->stanza);
	pend_ns_clear(xs);
	zone_free(xs->pend_ns);
	zone_free(xs->nchild);
	strbuf_free(&xs->text);
	strbuf_free(&xs->raw);
	head_free(xs);
	scope_pop(xs, 0);
	zone_free(xs->scope);
	header_ns_clear(xs);
	if (xs->p != NULL)
		XML_ParserFree(xs->p);
	zone_free(xs);
}

void
xml_stream_free(struct xml_stream *xs)
{
	if (xs == NULL)
		return;
	if (xs->busy) {
		/* Called from a callback: xml_stream_feed frees it on return. */
		xs->dying = true;
		if (xs->in_parse)
			(void)XML_StopParser(xs->p, XML_FALSE);
		return;
	}
	xs_destroy(xs);
}

void
xml_stream_stop(struct xml_stream *xs)
{
	/* Outside a callback there is no current element to stop after. */
	if (xs != NULL && xs->busy)
		xs->stop_req = true;
}

int
xml_stream_reset(struct xml_stream *xs)
{
	if (xs == NULL || xs->busy)
		return -1;
	if (xs->p == NULL)
		xs->p = XML_ParserCreateNS("UTF-8", NS_SEP);
	else if (XML_ParserReset(xs->p, "UTF-8") != XML_TRUE) {
		XML_ParserFree(xs->p);
		xs->p = NULL;
	}
	if (xs->p == NULL) {
		xs->dead = true;
		return -1;
	}
	return xs_setup(xs);
}

/* How many more bytes expat may get before the pending header or stanza
 * is certainly over its limit. */
static size_t
xs_room(const struct xml_stream *xs)
{
	uint64_t base, lim, used;

	if (xs->state == XS_PROLOG) {
		base = xs->header_base;
		lim = xs->lim.max_header_bytes;
	} else {
		/* Between stanzas, unparsed bytes after the last event are
		 * the start of the next stanza. */
		base = xs_in_stanza(xs) ? xs->stanza_start : xs->mark;
		lim = xs->lim.max_stanza_bytes;
	}
	used = xs->fed - base;
	if (used >= lim)
		return 0;
	return lim - used > SIZE_MAX ? SIZE_MAX : (size_t)(lim - used);
}

/* UTF-16 and UTF-32 show in the first two bytes (a BOM, or a NUL next to
 * '<'). expat would honour a BOM even when told UTF-8, so look first. */
static void
check_encoding(struct xml_stream *xs, const char *data, size_t len)
{
	uint64_t pos;
	size_t i;
	unsigned char c;

	for (i = 0; i < len && (pos = xs->fed + i) < 2; i++) {
		c = (unsigned char)data[i];
		if ((pos == 0 && (c == 0x00 || c == 0xfe || c == 0xff)) ||
		    (pos == 1 && c == 0x00)) {
			xs_fail(xs, XS_ERR_UNSUPPORTED_ENCODING,
			    "stream is not UTF-8");
			return;
		}
	}
}

static enum xml_stream_error
map_expat_error(enum XML_Error e)
{
	switch (e) {
	case XML_ERROR_NO_MEMORY:
		return XS_ERR_RESOURCE_CONSTRAINT;
	case XML_ERROR_UNBOUND_PREFIX:
	case XML_ERROR_UNDECLARING_PREFIX:
	case XML_ERROR_RESERVED_PREFIX_XML:
	case XML_ERROR_RESERVED_PREFIX_XMLNS:
	case XML_ERROR_RESERVED_NAMESPACE_URI:
		return XS_ERR_BAD_NAMESPACE_PREFIX;
	case XML_ERROR_UNKNOWN_ENCODING:
	case XML_ERROR_INCORRECT_ENCODING:
		return XS_ERR_UNSUPPORTED_ENCODING;
	default:
		return XS_ERR_NOT_WELL_FORMED;
	}
}

/* Interprets the status of XML_Parse/XML_ResumeParser. */
static enum xml_feed_result
parse_result(struct xml_stream *xs, enum XML_Status st)
{
	enum XML_Error e;
	char buf[sizeof(xs->detail)];

	if (xs->dying || xs->err != XS_ERR_NONE)
		return XS_FEED_ERROR;
	if (st == XML_STATUS_SUSPENDED && xs->suspended)
		return XS_FEED_STOPPED;
	if (st == XML_STATUS_OK)
		return XS_FEED_OK;
	e = XML_GetErrorCode(xs->p);
	/* a truncated diagnostic is fine */
	(void)snprintf(buf, sizeof(buf), "line %lu column %lu: %s",
	    (unsigned long)XML_GetCurrentLineNumber(xs->p),
	    (unsigned long)XML_GetCurrentColumnNumber(xs->p),
	    XML_ErrorString(e) != NULL ? XML_ErrorString(e) : "parse error");
	xs_fail(xs, map_expat_error(e), buf);
	return XS_FEED_ERROR;
}

bool
xml_stream_hibernate(struct xml_stream *xs)
{
	if (xs == NULL || xs->p == NULL || xs->busy || xs->dead || xs->suspended ||
	    xs->state != XS_OPEN || xs->depth != 1 ||
	    xs->fed != xs->mark || xs->hdr_qname == NULL)
		return false;
	XML_ParserFree(xs->p);
	xs->p = NULL;
	/* what a new parser would grow again anyway */
	pend_ns_clear(xs);
	strbuf_free(&xs->text);
	strbuf_init(&xs->text, xs->lim.max_stanza_bytes);
	head_free(xs);
	zone_free(xs->nchild);
	xs->nchild = NULL;
	xs->nchild_cap = 0;
	return true;
}

/* A new parser for a hibernated stream, positioned as the old one was:
 * inside the header, at document offset xs->fed. 0 on success. */
static int
xs_wake(struct xml_stream *xs)
{
	struct strbuf hdr;
	int rc = -1;

	strbuf_init(&hdr, 0);
	if ((xs->p = XML_ParserCreateNS("UTF-8", NS_SEP)) == NULL ||
	    parser_init(xs) == -1 || header_copy(xs, xs->hdr_qname, &hdr) == -1 ||
	    hdr.len > INT_MAX)
		goto out;
	xs->rehydrating = true;
	xs->depth = 0;		/* the copy's start tag makes it 1 again */
	xs->in_parse = true;
	if (XML_Parse(xs->p, hdr.data, (int)hdr.len, XML_FALSE) == XML_STATUS_OK && xs->depth == 1)
		rc = 0;
	xs->in_parse = false;
	xs->rehydrating = false;
	xs->shift = (int64_t)xs->fed - (int64_t)hdr.len;
out:
	strbuf_free(&hdr);
	if (rc == -1)
		xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT, "cannot wake the parser");
	return rc;
}

enum xml_feed_result
xml_stream_feed(struct xml_stream *xs, const char *data, size_t len,
    size_t *consumed)
{
	enum xml_feed_result res = XS_FEED_OK;
	enum XML_Status st;
	uint64_t base;		/* document offset of data[0] */
	size_t off = 0, n, room, held;

	if (consumed != NULL)
		*consumed = 0;
	if (xs == NULL || xs->dead || xs->busy)
		return XS_FEED_ERROR;
	xs->busy = true;
	if (xs->p == NULL && len > 0 && xs_wake(xs) == -1) {
		res = XS_FEED_ERROR;
		goto out;
	}

	if (xs->suspended) {
		/* The caller feeds again from the first unconsumed byte;
		 * expat still holds the bytes up to xs->fed. */
		base = xs->stop_off;
		held = (size_t)(xs->fed - xs->stop_off);
		if (len < held) {
			xs_fail(xs, XS_ERR_RESOURCE_CONSTRAINT,
			    "internal: resumed with fewer bytes than held");
			res = XS_FEED_ERROR;
			goto out;
		}
		xs->suspended = false;
		xs->in_parse = true;
		st = XML_ResumeParser(xs->p);
		xs->in_parse = false;
		off = held;
		if ((res = parse_result(xs, st)) != XS_FEED_OK)
			goto out;
	} else {
		base = xs->fed;
	}

	if (xs->fed < 2)
		check_encoding(xs, data + off, len - off);
	while (off < len && xs->err == XS_ERR_NONE) {
		if ((room = xs_room(xs)) == 0) {
			xs_fail(xs, XS_ERR_POLICY_VIOLATION,
			    xs->state == XS_PROLOG ? "stream header too large" :
			    "stanza too large");
			break;
		}
		n = len - off;
		if (n > room)
			n = room;
		if (n > INT_MAX)
			n = INT_MAX;
		/* Capture failing (no memory) only costs the raw path:
		 * stanzas starting before the gap are serialized. */
		if (strbuf_append(&xs->raw, data + off, n) == -1) {
			strbuf_free(&xs->raw);
			strbuf_init(&xs->raw, 0);
			xs->raw_base = xs->fed + n;
			xs->raw_ok = false;
		}
		xs->in_parse = true;
		st = XML_Parse(xs->p, data + off, (int)n, XML_FALSE);
		xs->in_parse = false;
		xs->fed += n;
		off += n;
		if ((res = parse_result(xs, st)) != XS_FEED_OK)
			goto out;
	}
	if (xs->err != XS_ERR_NONE || xs->dying)
		res = XS_FEED_ERROR;
out:
	if (!xs->dying)
		raw_compact(xs);
	if (consumed != NULL) {
		if (res == XS_FEED_STOPPED)
			*consumed = (size_t)(xs->stop_off - base);
		else if (res == XS_FEED_OK)
			*consumed = len;
		else
			*consumed = off;
	}
	if (res == XS_FEED_ERROR && !xs->dying && !xs->dead) {
		xs->dead = true;
		if (xs->err == XS_ERR_NONE)
			xs->err = XS_ERR_RESOURCE_CONSTRAINT;
		if (xs->cb.on_error != NULL)
			xs->cb.on_error(xs->ctx, xs->err, xs->detail);
	}
	xs->busy = false;
	if (xs->dying) {
		xs_destroy(xs);
		return XS_FEED_ERROR;
	}
	return res;
}

static void
keep_first_stanza(void *ctx, struct xml_node *n)
{
	struct xml_node **first = ctx;

	if (*first == NULL)
		*first = n;
	else
		xml_node_free(n);
}

struct xml_node *
xml_parse_stanza(const char *header, size_t header_len, const char *data, size_t len,
    const struct xml_stream_limits *limits)
{
	static const struct xml_stream_callbacks cb = { .on_stanza = keep_first_stanza };
	struct xml_node *first = NULL;
	struct xml_stream *xs = xml_stream_new(limits, &cb, &first);

	if (xs == NULL)
		return NULL;
	if (xml_stream_feed(xs, header, header_len, NULL) != XS_FEED_OK ||
	    xml_stream_feed(xs, data, len, NULL) != XS_FEED_OK) {
		xml_node_free(first);
		first = NULL;
	}
	xml_stream_free(xs);
	return first;
}

void
xml_stream_set_shallow(struct xml_stream *xs, bool on)
{
	xs->shallow_ok = on;
}

const char *
xml_stream_raw_stanza(const struct xml_stream *xs, size_t *len)
{
	*len = xs->raw_stanza_len;
	return xs->raw_stanza;
}

const char *
xml_stream_error_condition(enum xml_stream_error err)
{
	switch (err) {
	case XS_ERR_NOT_WELL_FORMED:
		return "not-well-formed";
	case XS_ERR_RESTRICTED_XML:
		return "restricted-xml";
	case XS_ERR_POLICY_VIOLATION:
		return "policy-violation";
	case XS_ERR_BAD_NAMESPACE_PREFIX:
		return "bad-namespace-prefix";
	case XS_ERR_UNSUPPORTED_ENCODING:
		return "unsupported-encoding";
	case XS_ERR_INVALID_XML:
		return "invalid-xml";
	case XS_ERR_RESOURCE_CONSTRAINT:
		return "resource-constraint";
	case XS_ERR_NONE:
		break;
	}
	return "undefined-condition";
}
