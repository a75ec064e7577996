/* loadgen.c - the benchmark's load generator (not installed).
 *
 * It plays many remote XMPP domains at once against a target server (a
 * dialbackd or a Prosody): for each remote domain it is the originating
 * server (opens an s2s stream, sends db:result) and, listening on the
 * address DNS gives those domains, the authoritative server that answers
 * the target's db:verify with type='valid'. It also plays the local side: a
 * component (XEP-0114) on the target that counts the messages it receives.
 *
 *   loadgen handshakes  TARGET_ADDR TARGET_DOMAIN AUTH_ADDR STREAMS
 *   loadgen throughput  TARGET_ADDR TARGET_DOMAIN AUTH_ADDR STREAMS MESSAGES COMP_ADDR COMP_DOMAIN SECRET
 *   loadgen idle        TARGET_ADDR TARGET_DOMAIN AUTH_ADDR STREAMS HOLD_SECONDS
 *   loadgen limit       MESSAGES
 *
 * Remote domains are bench<N>.test (N = 1..STREAMS). Every figure is
 * printed as "RESULT name value unit". Bounded: every phase has a deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <expat.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS	20000
#define BUF_MAX		(1u << 20)
#define PHASE_LIMIT_S	120

enum kind { K_OUT, K_AUTH_LISTEN, K_AUTH, K_COMP };
enum state { S_CONNECTING, S_OPENED, S_RESULT_SENT, S_VALID, S_COMP_HANDSHAKE, S_COMP_READY };

struct conn {
	int fd;
	enum kind kind;
	enum state state;
	int n;				/* bench<n>.test */
	char *in;			/* received, unparsed */
	size_t in_len;
	char *out;
	size_t out_len, out_off;
	double t_start, t_valid;
	long received;			/* component: messages counted */
	char id[128];
};

static int ep;
static struct conn *conns[MAX_CONNS + 64];
static const char *target_domain;
static long valid_count, messages_seen;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static struct sockaddr_in
addr_of(const char *s)
{
	struct sockaddr_in sin;
	char host[64];
	const char *colon = strrchr(s, ':');

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", s);
		exit(2);
	}
	return sin;
}

static void
watch(struct conn *c, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (epoll_ctl(ep, op, c->fd, &ev) == -1)
		die("epoll_ctl");
}

static void
send_str(struct conn *c, const char *s, size_t n)
{
	if (c->out_len + n > BUF_MAX * 64) {
		fprintf(stderr, "output too large\n");
		exit(1);
	}
	c->out = realloc(c->out, c->out_len + n);
	if (c->out == NULL)
		die("realloc");
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
	watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
}

static void
sendf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sendf(struct conn *c, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	send_str(c, buf, (size_t)n);
}

static struct conn *
conn_new(int fd, enum kind kind)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c == NULL || fd >= MAX_CONNS + 64)
		die("conn");
	c->fd = fd;
	c->kind = kind;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conns[fd] = c;
	watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
	return c;
}

static struct conn *
connect_to(struct sockaddr_in *sin, enum kind kind)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd == -1)
		die("socket");
	if (connect(fd, (struct sockaddr *)sin, sizeof(*sin)) == -1 && errno != EINPROGRESS)
		die("connect");
	return conn_new(fd, kind);
}

static const char *
attr(const char *tag, const char *name, char *out, size_t outlen)
{
	char pat[64];
	const char *p, *q;
	char quote;

	snprintf(pat, sizeof(pat), " %s=", name);
	if ((p = strstr(tag, pat)) == NULL)
		return NULL;
	p += strlen(pat);
	quote = *p++;
	if ((q = strchr(p, quote)) == NULL || (size_t)(q - p) >= outlen)
		return NULL;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return out;
}

/* The authoritative side: answer db:verify (and db:result) with valid. */
static void
auth_input(struct conn *c)
{
	char *p, from[256], to[256], id[256];

	c->in[c->in_len] = '\0';
	if (c->state == S_CONNECTING && (p = strstr(c->in, "<stream:stream")) != NULL && strchr(p, '>') != NULL) {
		char *gt = strchr(p, '>');
		*gt = '\0';
		if (attr(p, "from", from, sizeof(from)) == NULL)
			from[0] = '\0';
		if (attr(p, "to", to, sizeof(to)) == NULL)
			to[0] = '\0';
		sendf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
		    "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
		    "id='a%d' from='%s' to='%s' version='1.0'><stream:features/>", c->fd, to, from);
		c->state = S_OPENED;
		memmove(c->in, gt + 1, c->in_len - (size_t)(gt + 1 - c->in));
		c->in_len -= (size_t)(gt + 1 - c->in);
		c->in[c->in_len] = '\0';
	}
	while ((p = strstr(c->in, "<db:verify")) != NULL || (p = strstr(c->in, "<db:result")) != NULL) {
		char *end = strstr(p, "</db:");
		char *gt = strchr(p, '>');
		int verify = strncmp(p, "<db:verify", 10) == 0;
		if (gt == NULL || (end == NULL && gt[-1] != '/'))
			break;
		*gt = '\0';
		attr(p, "from", from, sizeof(from));
		attr(p, "to", to, sizeof(to));
		if (verify) {
			attr(p, "id", id, sizeof(id));
			sendf(c, "<db:verify from='%s' to='%s' id='%s' type='valid'/>", to, from, id);
		} else {
			sendf(c, "<db:result from='%s' to='%s' type='valid'/>", to, from);
		}
		end = end != NULL ? strchr(end, '>') : gt;
		memmove(c->in, end + 1, c->in_len - (size_t)(end + 1 - c->in));
		c->in_len -= (size_t)(end + 1 - c->in);
		c->in[c->in_len] = '\0';
	}
	/* drop whatever else (stanzas, keepalives) */
	if ((p = strrchr(c->in, '>')) != NULL && strstr(c->in, "<db:") == NULL) {
		c->in_len = 0;
	}
}

/* The originating side: open, dialback, then (throughput) messages. */
static void
out_input(struct conn *c)
{
	char *p, idbuf[128];

	c->in[c->in_len] = '\0';
	if (c->state == S_OPENED && (p = strstr(c->in, "<stream:stream")) != NULL && strchr(p, '>') != NULL) {
		char *gt = strchr(p, '>');
		*gt = '\0';
		if (attr(p, "id", idbuf, sizeof(idbuf)) != NULL)
			snprintf(c->id, sizeof(c->id), "%s", idbuf);
		*gt = '>';
		if (strstr(p, "version=") == NULL || strstr(gt, "</stream:features>") != NULL ||
		    strstr(gt, "<stream:features/>") != NULL) {
			sendf(c, "<db:result from='bench%d.test' to='%s'>%064d</db:result>", c->n, target_domain, 0);
			c->state = S_RESULT_SENT;
			c->in_len = 0;
		}
	} else if (c->state == S_RESULT_SENT && strstr(c->in, "type='valid'") != NULL) {
		c->state = S_VALID;
		c->t_valid = now_s();
		valid_count++;
		c->in_len = 0;
	} else if (c->state == S_RESULT_SENT && (strstr(c->in, "type='invalid'") != NULL ||
	    strstr(c->in, "type='error'") != NULL || strstr(c->in, "stream:error") != NULL)) {
		fprintf(stderr, "stream %d refused: %.300s\n", c->n, c->in);
		exit(1);
	} else if (c->state == S_VALID) {
		c->in_len = 0;	/* keepalives, errors we do not expect */
	}
}

static void
comp_input(struct conn *c, const char *secret)
{
	char *p, idbuf[128], digest_in[256];
	unsigned char md[SHA_DIGEST_LENGTH];
	char hex[SHA_DIGEST_LENGTH * 2 + 1];
	int i;

	c->in[c->in_len] = '\0';
	if (c->state == S_COMP_HANDSHAKE && (p = strstr(c->in, "<stream:stream")) != NULL &&
	    (strchr(p, '>') != NULL)) {
		char *gt = strchr(p, '>');
		*gt = '\0';
		attr(p, "id", idbuf, sizeof(idbuf));
		snprintf(digest_in, sizeof(digest_in), "%s%s", idbuf, secret);
		SHA1((unsigned char *)digest_in, strlen(digest_in), md);
		for (i = 0; i < SHA_DIGEST_LENGTH; i++)
			sprintf(hex + 2 * i, "%02x", md[i]);
		sendf(c, "<handshake>%s</handshake>", hex);
		c->state = S_COMP_READY;
		c->in_len = 0;
		return;
	}
	/* count messages; keep the tail in case a tag straddles reads */
	for (p = c->in; (p = strstr(p, "<message")) != NULL; p += 8)
		c->received++;
	messages_seen = c->received;
	if (c->in_len > 16) {
		/* keep 7 bytes: a "<message" cut by the read is counted next
		 * time, and 7 bytes cannot hold a whole one */
		memmove(c->in, c->in + c->in_len - 7, 7);
		c->in_len = 7;
	}
}

static const char *comp_secret = "";

static void
handle(struct conn *c, uint32_t events)
{
	if (events & EPOLLOUT) {
		if (c->state == S_CONNECTING && c->kind == K_OUT) {
			c->state = S_OPENED;
			sendf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
			    "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
			    "from='bench%d.test' to='%s' version='1.0'>", c->n, target_domain);
		}
		while (c->out_off < c->out_len) {
			ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
			if (n <= 0)
				break;
			c->out_off += (size_t)n;
		}
		if (c->out_off == c->out_len) {
			c->out_off = c->out_len = 0;
			watch(c, EPOLLIN, EPOLL_CTL_MOD);
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (c->in == NULL && (c->in = malloc(BUF_MAX + 1)) == NULL)
			die("malloc");
		for (;;) {
			ssize_t n = read(c->fd, c->in + c->in_len, BUF_MAX - c->in_len);
			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				if (c->kind == K_OUT && c->state != S_VALID) {
					fprintf(stderr, "stream %d closed by the target: %.300s\n", c->n,
					    c->in_len ? c->in : "");
					exit(1);
				}
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				conns[c->fd] = NULL;
				free(c->in);
				free(c->out);
				free(c);
				return;
			}
			if (n < 0)
				break;
			c->in_len += (size_t)n;
			if (c->in_len >= BUF_MAX - 1)
				c->in_len = 0;	/* nothing we wait for is that large */
			if (c->kind == K_AUTH)
				auth_input(c);
			else if (c->kind == K_OUT)
				out_input(c);
			else if (c->kind == K_COMP)
				comp_input(c, comp_secret);
		}
	}
}

static void
pump(int timeout_ms)
{
	struct epoll_event evs[256];
	int i, n;

	n = epoll_wait(ep, evs, 256, timeout_ms);
	for (i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;
		if (c->kind == K_AUTH_LISTEN) {
			int fd;
			while ((fd = accept(c->fd, NULL, NULL)) != -1)
				conn_new(fd, K_AUTH)->state = S_CONNECTING;
			continue;
		}
		handle(c, evs[i].events);
	}
}

static void
run_until(int (*done)(void), double limit, const char *phase)
{
	double deadline = now_s() + limit;

	while (!done()) {
		if (now_s() > deadline) {
			fprintf(stderr, "%s: not done in %.0f s\n", phase, limit);
			exit(1);
		}
		pump(100);
	}
}

static long want_valid, want_messages;
static struct conn *comp;

static int all_valid(void) { return valid_count >= want_valid; }
static int all_messages(void) { return comp != NULL && comp->received >= want_messages; }
static int comp_ready(void) { return comp != NULL && comp->state == S_COMP_READY && comp->out_len == 0; }

static double hold_until;
static int held(void) { return now_s() >= hold_until; }

static void
start_auth(const char *addr)
{
	struct sockaddr_in sin = addr_of(addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	struct conn *c;

	if (fd == -1)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(fd, 4096) == -1)
		die("bind authority");
	c = calloc(1, sizeof(*c));
	c->fd = fd;
	c->kind = K_AUTH_LISTEN;
	conns[fd] = c;
	watch(c, EPOLLIN, EPOLL_CTL_ADD);
}

static double
open_streams(const char *target, int streams)
{
	struct sockaddr_in sin = addr_of(target);
	double t0 = now_s();
	int i;

	want_valid = streams;
	for (i = 1; i <= streams; i++) {
		struct conn *c = connect_to(&sin, K_OUT);
		c->n = i;
		c->t_start = now_s();
		/* serve events while opening, so the target's accept queue and
		 * our own authority do not stall behind the connect loop */
		if (i % 50 == 0)
			pump(0);
	}
	run_until(all_valid, PHASE_LIMIT_S, "dialback");
	return now_s() - t0;
}

/* "the limit": the same stanza bytes through expat alone, and through a
 * socketpair, in one process. */
static void
limit(long messages)
{
	char stanza[512];
	int n = snprintf(stanza, sizeof(stanza), "<message from='u@bench1.test/r' to='sink@target' "
	    "type='chat' id='m1'><body>benchmark message 0123456789</body></message>");
	XML_Parser p = XML_ParserCreateNS(NULL, '\xff');
	double t0;
	long i;
	int sv[2];
	char rbuf[65536];
	size_t total = (size_t)n * (size_t)messages, got = 0;

	static const char hdr[] = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>";

	if (XML_Parse(p, hdr, (int)strlen(hdr), 0) != XML_STATUS_OK)
		die("expat header");
	t0 = now_s();
	for (i = 0; i < messages; i++)
		if (XML_Parse(p, stanza, n, 0) != XML_STATUS_OK)
			die("expat");
	printf("RESULT limit_expat %.0f msg/s\n", messages / (now_s() - t0));
	XML_ParserFree(p);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		die("socketpair");
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	t0 = now_s();
	i = 0;
	while (got < total) {
		if (i < messages && write(sv[0], stanza, (size_t)n) == n)
			i++;
		ssize_t r = read(sv[1], rbuf, sizeof(rbuf));
		if (r > 0)
			got += (size_t)r;
	}
	printf("RESULT limit_socketpair %.0f msg/s\n", messages / (now_s() - t0));
}

int
main(int argc, char **argv)
{
	double t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && strcmp(argv[1], "limit") == 0) {
		limit(atol(argv[2]));
		return 0;
	}
	if (argc < 6) {
		fprintf(stderr, "usage: see the comment at the top of bench/loadgen.c\n");
		return 2;
	}
	if ((ep = epoll_create1(0)) == -1)
		die("epoll");
	target_domain = argv[3];
	start_auth(argv[4]);
	if (strcmp(argv[1], "handshakes") == 0) {
		int streams = atoi(argv[5]);
		t = open_streams(argv[2], streams);
		printf("RESULT handshakes %.1f streams/s (%d streams in %.3f s)\n", streams / t, streams, t);
		return 0;
	}
	if (strcmp(argv[1], "idle") == 0 && argc >= 7) {
		int streams = atoi(argv[5]);
		t = open_streams(argv[2], streams);
		printf("RESULT idle_open %d streams in %.3f s\n", streams, t);
		printf("READY\n");
		hold_until = now_s() + atof(argv[6]);
		run_until(held, atof(argv[6]) + 5, "hold");
		return 0;
	}
	if (strcmp(argv[1], "throughput") == 0 && argc >= 10) {
		int streams = atoi(argv[5]), i;
		long messages = atol(argv[6]), per;
		struct sockaddr_in csin = addr_of(argv[7]);
		char msg[512];
		int mlen;
		double t0;

		comp_secret = argv[9];
		comp = connect_to(&csin, K_COMP);
		comp->state = S_COMP_HANDSHAKE;
		sendf(comp, "<stream:stream xmlns='jabber:component:accept' "
		    "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", argv[8]);
		run_until(comp_ready, 10, "component");
		open_streams(argv[2], streams);
		per = messages / streams;
		want_messages = per * streams;
		t0 = now_s();
		for (i = 0; i < MAX_CONNS + 64; i++) {
			struct conn *c = conns[i];
			long j;
			if (c == NULL || c->kind != K_OUT)
				continue;
			for (j = 0; j < per; j++) {
				mlen = snprintf(msg, sizeof(msg), "<message from='u@bench%d.test/r' to='sink@%s' "
				    "type='chat' id='m%ld'><body>benchmark message 0123456789</body></message>",
				    c->n, argv[8], j);
				send_str(c, msg, (size_t)mlen);
			}
		}
		run_until(all_messages, PHASE_LIMIT_S, "throughput");
		t = now_s() - t0;
		printf("RESULT throughput %.0f msg/s (%ld messages over %d streams in %.3f s)\n",
		    want_messages / t, want_messages, streams, t);
		return 0;
	}
	fprintf(stderr, "unknown workload %s\n", argv[1]);
	return 2;
}
