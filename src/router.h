/* router.h - where a stanza goes. A stanza for a hosted domain goes to that
 * domain's component (whichever worker holds it) or, with none attached, to
 * the domain's own answers (local.c). A stanza for a remote domain goes out
 * over the outbound stream of its (local, remote) pair, whichever worker
 * owns it, or is queued in the store while the pair is not yet valid. The
 * owners are in the store's routes; other workers are reached over ipc. */
#ifndef DIALBACKD_ROUTER_H
#define DIALBACKD_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "ipc.h"

struct worker;
struct xml_node;
struct store_owner;

/* Routes a stanza addressed from and to (its attributes) whose root
 * namespace is src_ns (the namespace of the stream it came from). Takes
 * ownership of the tree. raw, when not NULL, holds the stanza's bytes
 * ready to forward (xml_stream_raw_stanza, on_raw_stanza), and the tree
 * may then be shallow (its top element only) or NULL; otherwise the tree
 * is whole and is serialized. */
void router_route(struct worker *w, struct xml_node *stanza, const char *src_ns,
    const char *from, const char *to, const char *raw, size_t raw_len);
/* router_route for a caller that has parsed the stanza's domains already
 * (from_dom, to_dom: as util_jid_domain gives them) and knows whether to_dom is hosted
 * here (local). */
void router_route_pair(struct worker *w, struct xml_node *stanza, const char *src_ns,
    const char *raw, size_t raw_len, const char *from_dom, const char *to_dom, bool local);
/* Routes a serialized stanza from from_domain to to_domain. 0 when
 * delivered or queued; -1 when it was bounced or dropped (logged). */
int router_send(struct worker *w, const char *from_domain, const char *to_domain,
    const char *data, size_t len);
/* Returns an undeliverable serialized stanza to its sender as a stanza
 * error (never for an error stanza). */
void router_bounce(struct worker *w, const char *data, size_t len,
    const char *error_type, const char *condition);
/* Called by ipc.c for each message from another worker. */
void router_ipc_deliver(struct worker *w, enum ipc_type type, const char *local,
    const char *remote, const char *data, size_t len);
/* True if the owner process is alive (and so its route is not stale). */
bool router_owner_alive(const struct worker *w, const struct store_owner *o);
/* Parses one serialized stanza back into a tree; NULL if it cannot. */
struct xml_node *router_parse(const char *data, size_t len);

#endif
