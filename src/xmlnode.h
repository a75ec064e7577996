/* xmlnode.h - a small namespace-aware element tree for one stanza, and the
 * escaping serializer. Every node belongs to exactly one parent; freeing the
 * root frees the subtree. */
#ifndef DIALBACKD_XMLNODE_H
#define DIALBACKD_XMLNODE_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define NS_STREAMS	"http://etherx.jabber.org/streams"
#define NS_SERVER	"jabber:server"
#define NS_CLIENT	"jabber:client"
#define NS_COMPONENT	"jabber:component:accept"
#define NS_DIALBACK	"jabber:server:dialback"
#define NS_DIALBACK_FEATURE "urn:xmpp:features:dialback"
#define NS_TLS		"urn:ietf:params:xml:ns:xmpp-tls"
#define NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_STANZA_ERRORS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_XML		"http://www.w3.org/XML/1998/namespace"

enum xml_node_type { XML_NODE_ELEMENT, XML_NODE_TEXT };

struct xml_attr {
	char *prefix;		/* NULL when unprefixed ("xml" for xml:lang) */
	char *name;		/* local name */
	char *ns;		/* namespace URI, NULL when unprefixed */
	char *value;
};

struct xml_nsdecl {
	char *prefix;		/* NULL for the default namespace */
	char *uri;		/* "" undeclares the default namespace */
};

struct xml_node {
	enum xml_node_type type;
	struct xml_node *parent;
	struct xml_node *next;		/* next sibling */
	struct xml_node *first_child, *last_child;

	/* element */
	char *prefix;			/* as written ("db", "stream"), or NULL */
	char *name;			/* local name */
	char *ns;			/* resolved namespace URI ("" if none) */
	struct xml_attr *attrs;
	size_t n_attrs, attrs_cap;
	struct xml_nsdecl *nsdecls;	/* declarations written on this element */
	size_t n_nsdecls;

	/* text */
	char *text;
	size_t text_len;

	/* xml_node_new_spans: the node's block also holds its attribute
	 * array and strings (those are not freed on their own) */
	size_t packed_len;
};

/* Unterminated text, as a parser hands it over; p NULL: absent. */
struct xml_span {
	const char *p;
	size_t len;
};
struct xml_attr_spans {
	struct xml_span prefix, name, ns, value;
};

/* Constructors return NULL on allocation failure. A NULL ns is stored as
 * "" (no namespace); an empty prefix as NULL. */
struct xml_node *xml_node_new(const char *prefix, const char *name, const char *ns);
/* An element in one allocation with its attributes and strings, appended
 * to parent unless NULL. The attributes' names must be distinct (the
 * parser checked); a prefixed one needs its ns. NULL when out of memory. */
struct xml_node *xml_node_new_spans(struct xml_node *parent, struct xml_span prefix,
    struct xml_span name, struct xml_span ns, const struct xml_attr_spans *attrs,
    size_t n_attrs);
/* Frees n and its subtree, unlinking n from its parent first. */
void xml_node_free(struct xml_node *n);
/* Appends an element child; returns it. */
struct xml_node *xml_node_add_child(struct xml_node *parent, const char *prefix,
    const char *name, const char *ns);
/* Appends text (merged with a preceding text child). 0 on success. */
int xml_node_add_text(struct xml_node *parent, const char *text, size_t len);
/* Unprefixed attribute when prefix is NULL (ns is then ignored); prefix
 * "xml" defaults ns to NS_XML; any other prefix needs ns. Replaces the
 * value of an attribute with the same namespace and name. 0 on success. */
int xml_node_set_attr(struct xml_node *n, const char *prefix, const char *ns,
    const char *name, const char *value);
/* Makes room for count attributes in one allocation. 0 on success. */
int xml_node_reserve_attrs(struct xml_node *n, size_t count);
/* Removes the unprefixed attribute name: 1 if it was there, else 0. */
int xml_node_remove_attr(struct xml_node *n, const char *name);
/* Records a declaration written on n (prefix NULL: the default); replaces
 * one for the same prefix. 0 on success. */
int xml_node_add_nsdecl(struct xml_node *n, const char *prefix, const char *uri);

/* Value of the unprefixed attribute name, or NULL. */
const char *xml_node_attr(const struct xml_node *n, const char *name);
/* Value of an attribute in a namespace (e.g. NS_XML, "lang"), or NULL. */
const char *xml_node_attr_ns(const struct xml_node *n, const char *ns, const char *name);
/* First element child with this local name and namespace (ns NULL: any). */
struct xml_node *xml_node_child(const struct xml_node *n, const char *name, const char *ns);
/* First element child, any name. */
struct xml_node *xml_node_first_element(const struct xml_node *n);
/* True if n is an element with this local name and namespace (either
 * NULL: any). */
bool xml_node_is(const struct xml_node *n, const char *name, const char *ns);
/* Concatenated direct text children, NUL-terminated, malloc'd (free it);
 * NULL on allocation failure. *len gets the length when len != NULL. */
char *xml_node_text(const struct xml_node *n, size_t *len);
/* Deep copy, NULL on allocation failure. */
struct xml_node *xml_node_copy(const struct xml_node *n);

/* Serializes n and its subtree. The result is namespace-complete except
 * that when n's namespace equals stream_ns and n is unprefixed, no xmlns is
 * written on n: it inherits the stream's default (so a stanza parsed from
 * a jabber:server stream can be written to a jabber:component:accept one by
 * passing the source's namespace here and letting the stream supply its
 * own). Prefixed names get their xmlns:prefix declaration written unless
 * prefix is "stream" or "xml", once per scope; a default declaration is
 * written only where the namespace changes. Declarations recorded on a
 * node (nsdecls) for prefixes nothing else needed are kept. Empty elements
 * are written as <x/>, attribute values in single quotes. 0 on success;
 * -1 (out unchanged) when out of memory, over out->max, or the tree cannot
 * be written (a C0 control character, a prefix without namespace, one
 * prefix bound to two URIs on one element). */
int xml_serialize(const struct xml_node *n, const char *stream_ns, struct strbuf *out);

/* Appends s with &, <, >, ', " (and CR, which a reader would fold into LF)
 * escaped, for text and attribute values; attribute values written by
 * xml_serialize also get TAB and LF escaped. -1 (out unchanged) when out
 * of memory, over out->max, or s holds a C0 control character XML 1.0
 * cannot carry. */
int xml_escape(struct strbuf *out, const char *s, size_t len);

#endif
