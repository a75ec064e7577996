/* xmlnode.c - the element tree for one stanza, and its serializer. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmlnode.h"

/* An empty prefix means "no prefix": store both as NULL so that there is
 * only one way to say it. */
static const char *
norm_prefix(const char *prefix)
{
	return prefix != NULL && *prefix == '\0' ? NULL : prefix;
}

static int
dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (s != NULL && (*out = strdup(s)) == NULL)
		return -1;
	return 0;
}

static bool
str_eq_opt(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Whether p lies in n's own block (xml_node_new_spans). */
static bool
node_packed(const struct xml_node *n, const void *p)
{
	const char *c = p, *base = (const char *)n;

	return n->packed_len != 0 && c >= base && c < base + n->packed_len;
}

/* Frees what n holds at p, unless it is part of n's block. */
static void
node_release(const struct xml_node *n, void *p)
{
	if (!node_packed(n, p))
		free(p);
}

static void
attr_clear(const struct xml_node *n, struct xml_attr *a)
{
	node_release(n, a->prefix);
	node_release(n, a->name);
	node_release(n, a->ns);
	node_release(n, a->value);
}

/* Frees one node, not its children. */
static void
node_free_one(struct xml_node *n)
{
	size_t i;

	for (i = 0; i < n->n_attrs; i++)
		attr_clear(n, &n->attrs[i]);
	node_release(n, n->attrs);
	for (i = 0; i < n->n_nsdecls; i++) {
		free(n->nsdecls[i].prefix);
		free(n->nsdecls[i].uri);
	}
	free(n->nsdecls);
	node_release(n, n->prefix);
	node_release(n, n->name);
	node_release(n, n->ns);
	free(n->text);
	free(n);
}

static void
node_append(struct xml_node *parent, struct xml_node *child)
{
	child->parent = parent;
	child->next = NULL;
	if (parent->last_child != NULL)
		parent->last_child->next = child;
	else
		parent->first_child = child;
	parent->last_child = child;
}

static void
node_unlink(struct xml_node *n)
{
	struct xml_node *p = n->parent, *prev = NULL, *c;

	if (p == NULL)
		return;
	for (c = p->first_child; c != NULL && c != n; c = c->next)
		prev = c;
	if (c == NULL)
		return;
	if (prev != NULL)
		prev->next = n->next;
	else
		p->first_child = n->next;
	if (p->last_child == n)
		p->last_child = prev;
	n->parent = NULL;
	n->next = NULL;
}

struct xml_node *
xml_node_new(const char *prefix, const char *name, const char *ns)
{
	struct xml_node *n;

	if (name == NULL || *name == '\0') {
		errno = EINVAL;
		return NULL;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->type = XML_NODE_ELEMENT;
	if (dup_opt(norm_prefix(prefix), &n->prefix) == -1 ||
	    (n->name = strdup(name)) == NULL ||
	    (n->ns = strdup(ns != NULL ? ns : "")) == NULL) {
		node_free_one(n);
		return NULL;
	}
	return n;
}

/* Copies span into *at as a string; *out points at it (NULL if absent). */
static void
span_put(char **at, struct xml_span span, char **out)
{
	if (span.p == NULL) {
		*out = NULL;
		return;
	}
	memcpy(*at, span.p, span.len);
	(*at)[span.len] = '\0';
	*out = *at;
	*at += span.len + 1;
}

static size_t
span_size(struct xml_span span)
{
	return span.p != NULL ? span.len + 1 : 0;
}

struct xml_node *
xml_node_new_spans(struct xml_node *parent, struct xml_span prefix, struct xml_span name,
    struct xml_span ns, const struct xml_attr_spans *attrs, size_t n_attrs)
{
	/* the attribute array follows the node, aligned for its pointers */
	size_t head = (sizeof(struct xml_node) + _Alignof(struct xml_attr) - 1) &
	    ~(_Alignof(struct xml_attr) - 1);
	size_t size, i;
	struct xml_node *n;
	char *at;

	if (name.p == NULL || name.len == 0 || (parent != NULL && parent->type != XML_NODE_ELEMENT) ||
	    n_attrs > (SIZE_MAX - head) / sizeof(struct xml_attr) / 2) {
		errno = EINVAL;
		return NULL;
	}
	if (prefix.p != NULL && prefix.len == 0)
		prefix.p = NULL;	/* one way to say "no prefix" */
	if (ns.p == NULL)
		ns = (struct xml_span){ "", 0 };
	size = head + n_attrs * sizeof(struct xml_attr) + span_size(prefix) + name.len + 1 + ns.len + 1;
	for (i = 0; i < n_attrs; i++) {
		if (attrs[i].name.p == NULL || attrs[i].name.len == 0 || attrs[i].value.p == NULL ||
		    (attrs[i].prefix.p != NULL && attrs[i].prefix.len > 0 && attrs[i].ns.p == NULL)) {
			errno = EINVAL;
			return NULL;
		}
		size += span_size(attrs[i].prefix) + attrs[i].name.len + 1 +
		    span_size(attrs[i].ns) + attrs[i].value.len + 1;
	}
	if ((n = malloc(size)) == NULL)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->type = XML_NODE_ELEMENT;
	n->packed_len = size;
	at = (char *)n + head + n_attrs * sizeof(struct xml_attr);
	span_put(&at, prefix, &n->prefix);
	span_put(&at, name, &n->name);
	span_put(&at, ns, &n->ns);
	if (n_attrs > 0) {
		n->attrs = (struct xml_attr *)((char *)n + head);
		n->n_attrs = n->attrs_cap = n_attrs;
	}
	for (i = 0; i < n_attrs; i++) {
		struct xml_attr *a = &n->attrs[i];
		struct xml_span p = attrs[i].prefix;

		if (p.p != NULL && p.len == 0)
			p.p = NULL;
		span_put(&at, p, &a->prefix);
		span_put(&at, attrs[i].name, &a->name);
		/* unprefixed attributes are in no namespace */
		span_put(&at, p.p != NULL ? attrs[i].ns : (struct xml_span){ NULL, 0 }, &a->ns);
		span_put(&at, attrs[i].value, &a->value);
	}
	if (parent != NULL)
		node_append(parent, n);
	return n;
}

static struct xml_node *
text_new(const char *text, size_t len)
{
	struct xml_node *n;

	if (len == SIZE_MAX)
		return NULL;
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->type = XML_NODE_TEXT;
	if ((n->text = malloc(len + 1)) == NULL) {
		free(n);
		return NULL;
	}
	if (len > 0)
		memcpy(n->text, text, len);
	n->text[len] = '\0';
	n->text_len = len;
	return n;
}

void
xml_node_free(struct xml_node *n)
{
	struct xml_node *cur, *c, *parent;
	bool last;

	if (n == NULL)
		return;
	node_unlink(n);
	/* Iterative post-order walk: a deep tree must not exhaust the stack.
	 * Each child is detached from its parent before we descend into it. */
	cur = n;
	for (;;) {
		if ((c = cur->first_child) != NULL) {
			cur->first_child = c->next;
			cur = c;
			continue;
		}
		parent = cur->parent;
		last = cur == n;
		node_free_one(cur);
		if (last)
			break;
		cur = parent;
	}
}

struct xml_node *
xml_node_add_child(struct xml_node *parent, const char *prefix,
    const char *name, const char *ns)
{
	struct xml_node *c;

	if (parent == NULL || parent->type != XML_NODE_ELEMENT) {
		errno = EINVAL;
		return NULL;
	}
	if ((c = xml_node_new(prefix, name, ns)) == NULL)
		return NULL;
	node_append(parent, c);
	return c;
}

int
xml_node_add_text(struct xml_node *parent, const char *text, size_t len)
{
	struct xml_node *last, *t;
	char *p;

	if (parent == NULL || parent->type != XML_NODE_ELEMENT)
		return -1;
	if (len == 0)
		return 0;
	last = parent->last_child;
	if (last != NULL && last->type == XML_NODE_TEXT) {
		if (len > SIZE_MAX - 1 - last->text_len)
			return -1;
		if ((p = realloc(last->text, last->text_len + len + 1)) == NULL)
			return -1;
		memcpy(p + last->text_len, text, len);
		last->text = p;
		last->text_len += len;
		p[last->text_len] = '\0';
		return 0;
	}
	if ((t = text_new(text, len)) == NULL)
		return -1;
	node_append(parent, t);
	return 0;
}

int
xml_node_set_attr(struct xml_node *n, const char *prefix, const char *ns,
    const char *name, const char *value)
{
	struct xml_attr a;
	size_t i;

	memset(&a, 0, sizeof(a));
	if (n == NULL || n->type != XML_NODE_ELEMENT || name == NULL ||
	    *name == '\0' || value == NULL)
		return -1;
	prefix = norm_prefix(prefix);
	if (prefix == NULL)
		ns = NULL;	/* unprefixed attributes are in no namespace */
	else if (ns == NULL && strcmp(prefix, "xml") == 0)
		ns = NS_XML;
	else if (ns == NULL || *ns == '\0')
		return -1;	/* a prefix must be bound to a namespace */

	if (dup_opt(prefix, &a.prefix) == -1 || dup_opt(ns, &a.ns) == -1 ||
	    (a.name = strdup(name)) == NULL || (a.value = strdup(value)) == NULL)
		goto fail;

	for (i = 0; i < n->n_attrs; i++) {
		if (str_eq_opt(n->attrs[i].ns, ns) &&
		    strcmp(n->attrs[i].name, name) == 0) {
			attr_clear(n, &n->attrs[i]);
			n->attrs[i] = a;
			return 0;
		}
	}
	if (xml_node_reserve_attrs(n, n->n_attrs + 1) == -1)
		goto fail;
	n->attrs[n->n_attrs++] = a;
	return 0;
fail:
	attr_clear(n, &a);	/* a's strings are its own */
	return -1;
}

int
xml_node_reserve_attrs(struct xml_node *n, size_t count)
{
	struct xml_attr *arr;

	if (count <= n->attrs_cap)
		return 0;
	if (count >= SIZE_MAX / sizeof(*arr))
		return -1;
	if (node_packed(n, n->attrs)) {
		/* the packed array stays in the block, unused */
		if ((arr = malloc(count * sizeof(*arr))) == NULL)
			return -1;
		memcpy(arr, n->attrs, n->n_attrs * sizeof(*arr));
	} else if ((arr = realloc(n->attrs, count * sizeof(*arr))) == NULL) {
		return -1;
	}
	n->attrs = arr;
	n->attrs_cap = count;
	return 0;
}

int
xml_node_remove_attr(struct xml_node *n, const char *name)
{
	size_t i;

	if (n == NULL || n->type != XML_NODE_ELEMENT || name == NULL)
		return 0;
	for (i = 0; i < n->n_attrs; i++) {
		if (n->attrs[i].prefix == NULL && strcmp(n->attrs[i].name, name) == 0)
			break;
	}
	if (i == n->n_attrs)
		return 0;
	attr_clear(n, &n->attrs[i]);
	memmove(&n->attrs[i], &n->attrs[i + 1],
	    (n->n_attrs - i - 1) * sizeof(n->attrs[0]));
	if (--n->n_attrs == 0) {
		node_release(n, n->attrs);
		n->attrs = NULL;
		n->attrs_cap = 0;
	}
	return 1;
}

int
xml_node_add_nsdecl(struct xml_node *n, const char *prefix, const char *uri)
{
	struct xml_nsdecl d, *arr;
	size_t i;

	memset(&d, 0, sizeof(d));
	if (n == NULL || n->type != XML_NODE_ELEMENT)
		return -1;
	prefix = norm_prefix(prefix);
	if (dup_opt(prefix, &d.prefix) == -1 ||
	    (d.uri = strdup(uri != NULL ? uri : "")) == NULL)
		goto fail;
	for (i = 0; i < n->n_nsdecls; i++) {
		if (str_eq_opt(n->nsdecls[i].prefix, prefix)) {
			free(n->nsdecls[i].prefix);
			free(n->nsdecls[i].uri);
			n->nsdecls[i] = d;
			return 0;
		}
	}
	if (n->n_nsdecls >= SIZE_MAX / sizeof(*arr) - 1)
		goto fail;
	if ((arr = realloc(n->nsdecls, (n->n_nsdecls + 1) * sizeof(*arr))) == NULL)
		goto fail;
	n->nsdecls = arr;
	n->nsdecls[n->n_nsdecls++] = d;
	return 0;
fail:
	free(d.prefix);
	free(d.uri);
	return -1;
}

const char *
xml_node_attr(const struct xml_node *n, const char *name)
{
	size_t i;

	if (n == NULL || n->type != XML_NODE_ELEMENT || name == NULL)
		return NULL;
	for (i = 0; i < n->n_attrs; i++) {
		if (n->attrs[i].prefix == NULL && strcmp(n->attrs[i].name, name) == 0)
			return n->attrs[i].value;
	}
	return NULL;
}

const char *
xml_node_attr_ns(const struct xml_node *n, const char *ns, const char *name)
{
	size_t i;

	if (ns == NULL)
		return xml_node_attr(n, name);
	if (n == NULL || n->type != XML_NODE_ELEMENT || name == NULL)
		return NULL;
	for (i = 0; i < n->n_attrs; i++) {
		if (n->attrs[i].ns != NULL && strcmp(n->attrs[i].ns, ns) == 0 &&
		    strcmp(n->attrs[i].name, name) == 0)
			return n->attrs[i].value;
	}
	return NULL;
}

bool
xml_node_is(const struct xml_node *n, const char *name, const char *ns)
{
	if (n == NULL || n->type != XML_NODE_ELEMENT)
		return false;
	if (name != NULL && strcmp(n->name, name) != 0)
		return false;
	return ns == NULL || strcmp(n->ns, ns) == 0;
}

struct xml_node *
xml_node_child(const struct xml_node *n, const char *name, const char *ns)
{
	struct xml_node *c;

	if (n == NULL)
		return NULL;
	for (c = n->first_child; c != NULL; c = c->next) {
		if (xml_node_is(c, name, ns))
			return c;
	}
	return NULL;
}

struct xml_node *
xml_node_first_element(const struct xml_node *n)
{
	return xml_node_child(n, NULL, NULL);
}

char *
xml_node_text(const struct xml_node *n, size_t *len)
{
	const struct xml_node *c;
	struct strbuf sb;
	char *s;

	strbuf_init(&sb, 0);
	if (n != NULL && n->type == XML_NODE_TEXT) {
		if (strbuf_append(&sb, n->text, n->text_len) == -1)
			goto fail;
	} else if (n != NULL) {
		for (c = n->first_child; c != NULL; c = c->next) {
			if (c->type == XML_NODE_TEXT &&
			    strbuf_append(&sb, c->text, c->text_len) == -1)
				goto fail;
		}
	}
	if ((s = strbuf_steal(&sb, len)) == NULL)
		goto fail;
	return s;
fail:
	strbuf_free(&sb);
	return NULL;
}

/* Copies the element's own data (not its children). */
static struct xml_node *
element_copy_one(const struct xml_node *n)
{
	struct xml_node *c;
	size_t i;

	if ((c = xml_node_new(n->prefix, n->name, n->ns)) == NULL)
		return NULL;
	for (i = 0; i < n->n_attrs; i++) {
		const struct xml_attr *a = &n->attrs[i];
		if (xml_node_set_attr(c, a->prefix, a->ns, a->name, a->value) == -1)
			goto fail;
	}
	for (i = 0; i < n->n_nsdecls; i++) {
		if (xml_node_add_nsdecl(c, n->nsdecls[i].prefix,
		    n->nsdecls[i].uri) == -1)
			goto fail;
	}
	return c;
fail:
	xml_node_free(c);
	return NULL;
}

struct xml_node *
xml_node_copy(const struct xml_node *n)
{
	const struct xml_node *src;
	struct xml_node *root, *dst, *c;

	if (n == NULL)
		return NULL;
	if (n->type == XML_NODE_TEXT)
		return text_new(n->text, n->text_len);
	if ((root = element_copy_one(n)) == NULL)
		return NULL;
	/* Walk the source in document order without recursion; dst mirrors
	 * src's position in the copy. */
	src = n;
	dst = root;
	while (src != NULL) {
		if (src->type == XML_NODE_ELEMENT && src->first_child != NULL) {
			src = src->first_child;
		} else {
			while (src != n && src->next == NULL) {
				src = src->parent;
				dst = dst->parent;
			}
			if (src == n)
				break;
			src = src->next;
			dst = dst->parent;
		}
		if (src->type == XML_NODE_TEXT)
			c = text_new(src->text, src->text_len);
		else
			c = element_copy_one(src);
		if (c == NULL)
			goto fail;
		node_append(dst, c);
		dst = c;
	}
	return root;
fail:
	xml_node_free(root);
	return NULL;
}

/* ---- serializer ---------------------------------------------------- */

static int
escape(struct strbuf *out, const char *s, size_t len, bool attr)
{
	size_t i, start = 0, outlen = out->len;
	const char *ent;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		switch (c) {
		case '&': ent = "&amp;"; break;
		case '<': ent = "&lt;"; break;
		case '>': ent = "&gt;"; break;
		case '\'': ent = "&apos;"; break;
		case '"': ent = "&quot;"; break;
		/* A literal CR would be folded into LF by the reader. */
		case '\r': ent = "&#xD;"; break;
		/* In attribute values the reader turns TAB and LF into spaces. */
		case '\t': ent = attr ? "&#x9;" : NULL; break;
		case '\n': ent = attr ? "&#xA;" : NULL; break;
		default:
			/* Other C0 controls cannot be written in XML 1.0. */
			if (c < 0x20)
				goto fail;
			ent = NULL;
			break;
		}
		if (ent == NULL)
			continue;
		if (strbuf_append(out, s + start, i - start) == -1 ||
		    strbuf_appends(out, ent) == -1)
			goto fail;
		start = i + 1;
	}
	if (strbuf_append(out, s + start, len - start) == -1)
		goto fail;
	return 0;
fail:
	out->len = outlen;
	if (out->data != NULL)
		out->data[outlen] = '\0';
	return -1;
}

int
xml_escape(struct strbuf *out, const char *s, size_t len)
{
	return escape(out, s, len, false);
}

static int
escape_attr(struct strbuf *out, const char *s)
{
	return escape(out, s, strlen(s), true);
}

/* The prefix declarations in scope while writing one element: those
 * written on it, then (through up) those of its written ancestors. */
struct ns_frame {
	const struct ns_frame *up;
	const char **prefix;
	const char **uri;
	size_t n;
};

/* Makes prefix map to uri on this element. 0 when already so in scope or
 * added; -1 when the element already binds prefix to another URI. With
 * soft, such a conflict is ignored (the computed binding wins). */
static int
ns_bind(struct ns_frame *f, const char *prefix, const char *uri, bool soft)
{
	const struct ns_frame *p;
	size_t i;

	for (i = 0; i < f->n; i++) {
		if (strcmp(f->prefix[i], prefix) == 0)
			return (strcmp(f->uri[i], uri) == 0 || soft) ? 0 : -1;
	}
	for (p = f->up; p != NULL; p = p->up) {
		for (i = 0; i < p->n; i++) {
			if (strcmp(p->prefix[i], prefix) != 0)
				continue;
			/* the nearest declaration decides */
			if (strcmp(p->uri[i], uri) == 0)
				return 0;
			goto add;
		}
	}
add:
	f->prefix[f->n] = prefix;
	f->uri[f->n] = uri;
	f->n++;
	return 0;
}

/* "stream" is bound by the stream header and "xml" is predeclared. */
static bool
prefix_implicit(const char *prefix)
{
	return strcmp(prefix, "stream") == 0 || strcmp(prefix, "xml") == 0;
}

static int
write_qname(struct strbuf *out, const char *prefix, const char *name)
{
	if (prefix != NULL && (strbuf_appends(out, prefix) == -1 ||
	    strbuf_append(out, ":", 1) == -1))
		return -1;
	return strbuf_appends(out, name);
}

/* Writes element n; default_ns is the default namespace in scope where n
 * is written. Recursion depth is the tree depth, which the parser bounds
 * with max_depth. */
static int
serialize_element(const struct xml_node *n, const struct ns_frame *up,
    const char *default_ns, struct strbuf *out)
{
	struct ns_frame f;
	const struct xml_node *c;
	const char *ns = n->ns != NULL ? n->ns : "";
	const char *my_default = default_ns;
	bool write_default = false;
	size_t i, cap;
	int rc = -1;

	memset(&f, 0, sizeof(f));
	f.up = up;
	cap = 1 + n->n_attrs + n->n_nsdecls;
	if ((f.prefix = calloc(cap, sizeof(*f.prefix))) == NULL ||
	    (f.uri = calloc(cap, sizeof(*f.uri))) == NULL)
		goto out;

	if (n->prefix == NULL) {
		if (strcmp(ns, default_ns) != 0) {
			write_default = true;
			my_default = ns;
		}
	} else if (!prefix_implicit(n->prefix)) {
		/* "xmlns:p=''" is not XML 1.0 */
		if (*ns == '\0' || ns_bind(&f, n->prefix, ns, false) == -1)
			goto out;
	}
	for (i = 0; i < n->n_attrs; i++) {
		const struct xml_attr *a = &n->attrs[i];
		if (a->prefix == NULL || prefix_implicit(a->prefix))
			continue;
		if (a->ns == NULL || *a->ns == '\0' ||
		    ns_bind(&f, a->prefix, a->ns, false) == -1)
			goto out;
	}
	/* Declarations the element carried that nothing above needed (a
	 * prefix used only in content, say): keep them. */
	for (i = 0; i < n->n_nsdecls; i++) {
		const struct xml_nsdecl *d = &n->nsdecls[i];
		if (d->prefix == NULL || strcmp(d->prefix, "xml") == 0 ||
		    d->uri == NULL || *d->uri == '\0')
			continue;
		if (ns_bind(&f, d->prefix, d->uri, true) == -1)
			goto out;
	}

	if (strbuf_append(out, "<", 1) == -1 ||
	    write_qname(out, n->prefix, n->name) == -1)
		goto out;
	if (write_default && (strbuf_appends(out, " xmlns='") == -1 ||
	    escape_attr(out, ns) == -1 || strbuf_append(out, "'", 1) == -1))
		goto out;
	for (i = 0; i < f.n; i++) {
		if (strbuf_appends(out, " xmlns:") == -1 ||
		    strbuf_appends(out, f.prefix[i]) == -1 ||
		    strbuf_appends(out, "='") == -1 ||
		    escape_attr(out, f.uri[i]) == -1 ||
		    strbuf_append(out, "'", 1) == -1)
			goto out;
	}
	for (i = 0; i < n->n_attrs; i++) {
		const struct xml_attr *a = &n->attrs[i];
		if (strbuf_append(out, " ", 1) == -1 ||
		    write_qname(out, a->prefix, a->name) == -1 ||
		    strbuf_appends(out, "='") == -1 ||
		    escape_attr(out, a->value) == -1 ||
		    strbuf_append(out, "'", 1) == -1)
			goto out;
	}
	if (n->first_child == NULL) {
		rc = strbuf_appends(out, "/>");
		goto out;
	}
	if (strbuf_append(out, ">", 1) == -1)
		goto out;
	for (c = n->first_child; c != NULL; c = c->next) {
		if (c->type == XML_NODE_TEXT) {
			if (xml_escape(out, c->text, c->text_len) == -1)
				goto out;
		} else if (serialize_element(c, &f, my_default, out) == -1) {
			goto out;
		}
	}
	if (strbuf_appends(out, "</") == -1 ||
	    write_qname(out, n->prefix, n->name) == -1 ||
	    strbuf_append(out, ">", 1) == -1)
		goto out;
	rc = 0;
out:
	free(f.prefix);
	free(f.uri);
	return rc;
}

int
xml_serialize(const struct xml_node *n, const char *stream_ns, struct strbuf *out)
{
	size_t start = out->len;
	int rc;

	if (n == NULL)
		return -1;
	if (n->type == XML_NODE_TEXT)
		rc = xml_escape(out, n->text, n->text_len);
	else
		rc = serialize_element(n, NULL, stream_ns != NULL ? stream_ns : "", out);
	if (rc == -1) {
		/* leave no half-written element behind */
		out->len = start;
		if (out->data != NULL)
			out->data[start] = '\0';
	}
	return rc;
}
