/* xmlstream.h - an XMPP stream on expat as a bounded push parser.
 *
 * Depth 0 is the stream header (<stream:stream>): reported with its
 * attributes and namespace declarations. Depth 1 elements are stanzas (and
 * negotiation elements): each is delivered whole as an xml_node tree. The
 * end of the header element is the end of the stream. DTDs, entity
 * declarations, processing instructions and comments are refused
 * (RFC 6120 §11.1).
 *
 * Whitespace between stanzas (keepalives) is ignored. Other text at
 * stream level is refused with invalid-xml: it is well-formed XML, but the
 * stream element has element-only content. Only UTF-8 is read: a declared
 * encoding other than UTF-8, or a UTF-16/UTF-32 byte order mark or NUL
 * byte at the start, gives unsupported-encoding. The header is delivered
 * as sent (legacy headers without version, to, from, or with id='' too);
 * validating it is the caller's job. */
#ifndef DIALBACKD_XMLSTREAM_H
#define DIALBACKD_XMLSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "xmlnode.h"

/* Errors, each named by the RFC 6120 stream error condition it maps to. */
enum xml_stream_error {
	XS_ERR_NONE = 0,
	XS_ERR_NOT_WELL_FORMED,		/* not-well-formed */
	XS_ERR_RESTRICTED_XML,		/* restricted-xml: DTD, PI, comment, entity decl */
	XS_ERR_POLICY_VIOLATION,	/* policy-violation: stanza too large, too deep, too many attrs/children */
	XS_ERR_BAD_NAMESPACE_PREFIX,	/* bad-namespace-prefix: unbound prefix */
	XS_ERR_UNSUPPORTED_ENCODING,	/* unsupported-encoding: not UTF-8 */
	XS_ERR_INVALID_XML,		/* invalid-xml: e.g. text at stream level */
	XS_ERR_RESOURCE_CONSTRAINT,	/* resource-constraint: out of memory, API misuse */
};

/* Every limit must be > 0. Breaking one gives policy-violation; the byte
 * limits are enforced as bytes arrive, before a tag is complete. */
struct xml_stream_limits {
	size_t max_stanza_bytes;	/* bytes of one depth-1 element, markup included */
	unsigned max_depth;		/* element depth inside a stanza (the stanza is 1) */
	unsigned max_attrs;		/* attributes + xmlns declarations per element */
	unsigned max_children;		/* child nodes (elements, text runs) per element */
	size_t max_header_bytes;	/* bytes of the stream header tag, counted from
					 * the end of the XML declaration if any */
};

/* The top element of a shallow stanza (see xml_stream_set_shallow) as
 * on_raw_stanza sees it: its namespace and name, and the values of its
 * unprefixed from, to, type and id attributes (NULL when absent). */
struct xml_stanza_head {
	const char *ns, *name;
	const char *from, *to, *type, *id;
};

/* Any callback may be NULL (a NULL on_stanza frees the stanza). From a
 * callback the stream may be stopped or freed (the free is deferred until
 * xml_stream_feed returns, which then returns XS_FEED_ERROR without calling
 * on_error), but not fed or reset. */
struct xml_stream_callbacks {
	/* The stream header: an element without children. Borrowed: valid
	 * during the call only. */
	void (*on_stream_start)(void *ctx, const struct xml_node *header);
	/* A complete depth-1 element. Ownership passes to the callee. */
	void (*on_stanza)(void *ctx, struct xml_node *stanza);
	/* A shallow stanza as its head and its bytes, both borrowed for the
	 * call: no tree is built. Returns false to have it delivered to
	 * on_stanza instead, as a whole tree parsed from those bytes (a
	 * stream freed by the callback counts as taken). */
	bool (*on_raw_stanza)(void *ctx, const struct xml_stanza_head *head,
	    const char *raw, size_t len);
	/* </stream:stream> */
	void (*on_stream_end)(void *ctx);
	/* Parsing stops for good; err says which stream error to send.
	 * detail is a short diagnostic for the log, valid during the call. */
	void (*on_error)(void *ctx, enum xml_stream_error err, const char *detail);
};

struct xml_stream;

enum xml_feed_result {
	XS_FEED_OK = 0,		/* all bytes consumed */
	XS_FEED_STOPPED,	/* a callback called xml_stream_stop() */
	XS_FEED_ERROR,		/* on_error was called (not when a callback
				 * freed the stream); the stream is dead */
};

/* NULL when out of memory, on a zero limit (errno EINVAL) or when the
 * CSPRNG fails. */
struct xml_stream *xml_stream_new(const struct xml_stream_limits *limits,
    const struct xml_stream_callbacks *cb, void *ctx);
void xml_stream_free(struct xml_stream *xs);
/* New limits (e.g. a larger stanza size once a pair is validated); they
 * apply from the next event on. 0 on success. */
int xml_stream_set_limits(struct xml_stream *xs, const struct xml_stream_limits *limits);

/* Feeds bytes. *consumed (may be NULL) gets how many bytes were parsed; it
 * is < len only with XS_FEED_STOPPED, and then the remaining bytes come
 * after the element whose callback stopped the parser (e.g. the start of a
 * TLS handshake after <starttls/>, which must not be parsed as XML).
 *
 * After XS_FEED_STOPPED, either call xml_stream_reset(), or continue the
 * same document by feeding again from the first unconsumed byte: that
 * next call must include at least all the bytes the stopped call did not
 * consume (they are still buffered in the parser), and may add more. A
 * shorter one is refused (resource-constraint). After XS_FEED_ERROR the
 * stream is dead and every later feed returns XS_FEED_ERROR. */
enum xml_feed_result xml_stream_feed(struct xml_stream *xs, const char *data,
    size_t len, size_t *consumed);

/* From inside a callback: stop after the current element (or after the
 * header tag, from on_stream_start). Ignored outside callbacks. */
void xml_stream_stop(struct xml_stream *xs);

/* A new document on the same object (after STARTTLS): fresh parser state,
 * handlers and limits registered again, new hash salt. Also revives a
 * stream after an error. 0 on success; -1 from inside a callback (nothing
 * changes) or when the parser cannot be set up again (the stream is then
 * dead). */
int xml_stream_reset(struct xml_stream *xs);

/* From inside on_stanza: the stanza's bytes as they arrived, when they
 * can be written unchanged into another stream whose default namespace is
 * the receiver's content namespace (see raw_check_element in
 * xmlstream.c); NULL otherwise, and then the tree must be serialized.
 * Valid during the call only. */
const char *xml_stream_raw_stanza(const struct xml_stream *xs, size_t *len);
/* Shallow stanzas (off by default): a message, presence or iq whose
 * bytes xml_stream_raw_stanza hands out is delivered as its top element
 * only, attributes and declarations included, without children; whoever
 * needs its content parses those bytes. With on_raw_stanza set, not even
 * the top element is built: the callback gets the head and the bytes.
 * Children are still held to every limit. A stanza that cannot be handed
 * out as bytes is always built whole. */
void xml_stream_set_shallow(struct xml_stream *xs, bool on);
/* Gives the parser's memory back while the stream is idle between
 * stanzas; the next feed makes a new parser that carries on the same
 * document. True when done; false (nothing changed) when the stream is
 * inside a stanza, holds unparsed bytes, is stopped, ended or dead. */
bool xml_stream_hibernate(struct xml_stream *xs);
/* Parses data as the first stanza of a stream opened by header (its
 * opening tag as text), under limits; extra stanzas are dropped. NULL when
 * that is not well-formed, breaks a limit, or on no memory. */
struct xml_node *xml_parse_stanza(const char *header, size_t header_len,
    const char *data, size_t len, const struct xml_stream_limits *limits);
/* Condition name for a stream error ("not-well-formed", ...);
 * "undefined-condition" for XS_ERR_NONE. */
const char *xml_stream_error_condition(enum xml_stream_error err);

#endif
