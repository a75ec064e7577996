/* loadgen.c - the benchmark's load generator (not installed).
 *
 * It plays many remote XMPP domains at once against a target server (a
 * dialbackd or a Prosody): for each remote domain it is the originating
 * server (opens an s2s stream, sends db:result) and, listening on the
 * address DNS gives those domains, the authoritative server that answers
 * the target's db:verify with type='valid' (and the receiving server that
 * accepts the target's own streams to those domains). It also plays the
 * local side: a component (XEP-0114) on the target that counts the messages
 * it receives, or sends messages out to the remote domains.
 *
 *   loadgen handshakes  [--tls] TARGET_ADDR TARGET_DOMAIN AUTH_ADDR STREAMS
 *   loadgen throughput  [--tls] TARGET_ADDR TARGET_DOMAIN AUTH_ADDR STREAMS MESSAGES COMP_ADDR COMP_DOMAIN SECRET
 *   loadgen reverse     TARGET_ADDR TARGET_DOMAIN AUTH_ADDR STREAMS MESSAGES COMP_ADDR COMP_DOMAIN SECRET
 *   loadgen latency     [--tls] TARGET_ADDR TARGET_DOMAIN AUTH_ADDR STREAMS RATE SECONDS COMP_ADDR COMP_DOMAIN SECRET
 *   loadgen idle        [--tls] TARGET_ADDR TARGET_DOMAIN AUTH_ADDR STREAMS HOLD_SECONDS
 *   loadgen limit       MESSAGES
 *
 * --tls may stand anywhere after the workload name: the originating streams
 * then use STARTTLS (no certificate check, SNI = TARGET_DOMAIN) and fail if
 * the target does not offer it. The authority side is always plain TCP (so
 * --tls changes nothing for reverse).
 *
 * throughput: remote streams -> component, MESSAGES split over STREAMS.
 * reverse: component -> remote domains bench1..STREAMS (the target opens the
 * streams to AUTH_ADDR); one warm-up message per domain, then MESSAGES timed.
 * latency: remote streams -> component at RATE msg/s in total for SECONDS,
 * each message stamped with its send time; p50/p99 of the arrival delay.
 *
 * Build: gcc -O2 -Wall -Wextra -o bench/out/loadgen bench/loadgen.c -lexpat -lcrypto -lssl
 *
 * Remote domains are bench<N>.test (N = 1..STREAMS). Every figure is
 * printed as "RESULT name value unit". Bounded: every phase has a deadline,
 * and output is produced lazily, at most OUT_FILL bytes ahead per conn.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <expat.h>
#include <signal.h>
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
#define BUF_MAX		(1u << 20)	/* input per conn; also the latency backlog cap */
#define OUT_FILL	(64u << 10)	/* lazy output: refill up to this much */
#define PHASE_LIMIT_S	120
#define MAX_SAMPLES	2000000
#define SETUP_BATCH	100

enum kind { K_OUT, K_AUTH_LISTEN, K_AUTH, K_COMP };
enum state { S_CONNECTING, S_OPENED, S_STARTTLS, S_RESULT_SENT, S_VALID, S_COMP_HANDSHAKE,
    S_COMP_AUTHING, S_COMP_READY };
enum tls { T_NONE, T_HANDSHAKE, T_UP };

struct conn {
	int fd;
	enum kind kind;
	enum state state;
	enum tls tls;
	SSL *ssl;
	int read_wants_write;		/* SSL_read asked for EPOLLOUT */
	uint32_t events;		/* what epoll watches now */
	int n;				/* bench<n>.test */
	char *in;			/* received, unparsed */
	size_t in_len;
	char *out;
	size_t out_len, out_off, out_cap;
	long to_send;			/* lazy output still to produce */
	long next_id;
	int dirty;			/* latency: has new output to flush */
	double t_start, t_valid;
	long received;			/* component: messages counted */
	char id[128];
};

static int ep;
static struct conn *conns[MAX_CONNS + 64];
static struct conn **outs;		/* K_OUT conns by n - 1 */
static const char *target_domain, *comp_domain = "";
static long valid_count, auth_messages;
static int use_tls, nstreams, latency_mode, reverse_mode, warming;
static char first_bounce[301];
static long bounces, *retry, nretry, retried;	/* reverse: messages the target returned */
static SSL_CTX *tls_ctx;
static long *samples;
static long nsamples;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static double
phase_limit(long messages)
{
	/* big runs may take a while on a loaded 2-core box, but not forever */
	return PHASE_LIMIT_S + (double)messages / 10000;
}

static struct sockaddr_in
addr_of(const char *s)
{
	struct sockaddr_in sin;
	char host[64];
	const char *colon = strrchr(s, ':');

	if (colon == NULL) {
		fprintf(stderr, "bad address %s (want ADDR:PORT)\n", s);
		exit(2);
	}
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

	/* skip the syscall when nothing changes: latency sends often */
	if (op == EPOLL_CTL_MOD && c->events == events)
		return;
	if (epoll_ctl(ep, op, c->fd, &ev) == -1)
		die("epoll_ctl");
	c->events = events;
}

static void
out_reserve(struct conn *c, size_t n)
{
	size_t cap;

	if (c->out_len + n <= c->out_cap)
		return;
	if (c->out_len + n > 64 * BUF_MAX) {
		fprintf(stderr, "output too large\n");
		exit(1);
	}
	for (cap = c->out_cap ? c->out_cap : 4096; cap < c->out_len + n; cap *= 2)
		;
	if ((c->out = realloc(c->out, cap)) == NULL)
		die("realloc");
	c->out_cap = cap;
}

static void
send_str(struct conn *c, const char *s, size_t n)
{
	out_reserve(c, n);
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

/* Append one stanza in place, no watch change (callers flush). */
static void
appendf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
appendf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	out_reserve(c, 512);
	va_start(ap, fmt);
	n = vsnprintf(c->out + c->out_len, 512, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= 512) {
		fprintf(stderr, "stanza too long\n");
		exit(1);
	}
	c->out_len += (size_t)n;
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

static void
tls_fail(struct conn *c, const char *what)
{
	fprintf(stderr, "stream %d: TLS %s failed: ", c->n, what);
	ERR_print_errors_fp(stderr);
	fprintf(stderr, "\n");
	exit(1);
}

/* read/write through TLS when the conn has it; -1 with EAGAIN = wait */
static ssize_t
io_read(struct conn *c, char *buf, size_t len)
{
	int n, err;

	if (c->ssl == NULL)
		return read(c->fd, buf, len);
	c->read_wants_write = 0;
	if ((n = SSL_read(c->ssl, buf, (int)len)) > 0)
		return n;
	switch ((err = SSL_get_error(c->ssl, n))) {
	case SSL_ERROR_WANT_WRITE:
		c->read_wants_write = 1;
		watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
		/* FALLTHROUGH */
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0)
			return errno == 0 || errno == EAGAIN ? 0 : -1;	/* EOF without close_notify */
		/* FALLTHROUGH */
	default:
		ERR_print_errors_fp(stderr);
		errno = EIO;
		return -1;
	}
}

static ssize_t
io_write(struct conn *c, const char *buf, size_t len)
{
	int n, err;

	if (c->ssl == NULL)
		return write(c->fd, buf, len);
	if ((n = SSL_write(c->ssl, buf, (int)len)) > 0)
		return n;
	err = SSL_get_error(c->ssl, n);
	errno = err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? EAGAIN : EIO;
	return -1;
}

static void
send_header(struct conn *c)
{
	sendf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
	    "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
	    "from='bench%d.test' to='%s' version='1.0'>", c->n, target_domain);
}

/* Drive the client handshake; on success restart the stream over TLS. */
static void
tls_step(struct conn *c)
{
	int r = SSL_do_handshake(c->ssl);

	if (r == 1) {
		c->tls = T_UP;
		c->state = S_OPENED;
		c->in_len = 0;
		send_header(c);
		return;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		watch(c, EPOLLIN, EPOLL_CTL_MOD);
		break;
	case SSL_ERROR_WANT_WRITE:
		watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
		break;
	default:
		tls_fail(c, "handshake");
	}
}

static void
tls_start(struct conn *c)
{
	if ((c->ssl = SSL_new(tls_ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
		tls_fail(c, "setup");
	SSL_set_connect_state(c->ssl);
	SSL_set_tlsext_host_name(c->ssl, target_domain);
	c->tls = T_HANDSHAKE;
	tls_step(c);
}

/* The authoritative / receiving side: answer the stream header, db:verify
 * and db:result with valid; count the messages the target sends us. */
static void
auth_input(struct conn *c)
{
	char *p, *gt, *end, *lim, from[256], to[256], id[256], ver[16];

	c->in[c->in_len] = '\0';
	p = c->in;
	if (c->state == S_CONNECTING) {
		if ((p = strstr(c->in, "<stream:stream")) == NULL || (gt = strchr(p, '>')) == NULL)
			return;
		*gt = '\0';
		if (attr(p, "from", from, sizeof(from)) == NULL)
			from[0] = '\0';
		if (attr(p, "to", to, sizeof(to)) == NULL)
			to[0] = '\0';
		if (attr(p, "version", ver, sizeof(ver)) != NULL && strcmp(ver, "1.0") == 0)
			/* the dialback feature: peers may want it before db:result */
			sendf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
			    "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
			    "id='a%d' from='%s' to='%s' version='1.0'><stream:features>"
			    "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
			    "</stream:features>", c->fd, to, from);
		else
			sendf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
			    "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
			    "id='a%d' from='%s' to='%s'>", c->fd, to, from);
		c->state = S_OPENED;
		p = gt + 1;
	}
	lim = c->in + c->in_len;
	while (p < lim && (p = memchr(p, '<', (size_t)(lim - p))) != NULL) {
		if (lim - p < 12)
			break;		/* maybe a tag cut by the read: next time */
		if (strncmp(p, "<message", 8) == 0) {
			auth_messages++;
			p += 8;
			continue;
		}
		if (strncmp(p, "<db:verify", 10) != 0 && strncmp(p, "<db:result", 10) != 0) {
			p++;
			continue;
		}
		if ((gt = strchr(p, '>')) == NULL)
			break;
		if (gt[-1] == '/')
			end = gt;
		else if ((end = strstr(gt, "</db:")) == NULL || (end = strchr(end, '>')) == NULL)
			break;
		*gt = '\0';
		from[0] = to[0] = id[0] = '\0';
		attr(p, "from", from, sizeof(from));
		attr(p, "to", to, sizeof(to));
		if (strncmp(p, "<db:verify", 10) == 0) {
			attr(p, "id", id, sizeof(id));
			sendf(c, "<db:verify from='%s' to='%s' id='%s' type='valid'/>", to, from, id);
		} else
			sendf(c, "<db:result from='%s' to='%s' type='valid'/>", to, from);
		p = end + 1;
	}
	/* keep only what is not handled yet */
	if (p == NULL || p >= lim) {
		c->in_len = 0;
	} else if (p > c->in) {
		memmove(c->in, p, (size_t)(lim - p));
		c->in_len = (size_t)(lim - p);
	}
}

/* The originating side: open, STARTTLS if asked, dialback, then messages. */
static void
out_input(struct conn *c)
{
	char *p, *gt, idbuf[128];

	c->in[c->in_len] = '\0';
	if (c->state == S_OPENED && (p = strstr(c->in, "<stream:stream")) != NULL &&
	    (gt = strchr(p, '>')) != NULL) {
		int legacy;

		*gt = '\0';
		if (attr(p, "id", idbuf, sizeof(idbuf)) != NULL)
			snprintf(c->id, sizeof(c->id), "%s", idbuf);
		legacy = strstr(p, "version=") == NULL;
		*gt = '>';
		if (!legacy && strstr(gt, "</stream:features>") == NULL && strstr(gt, "<stream:features/>") == NULL)
			return;		/* wait for the whole features */
		if (use_tls && c->tls == T_NONE) {
			if (legacy || strstr(gt, "urn:ietf:params:xml:ns:xmpp-tls") == NULL) {
				fprintf(stderr, "stream %d: --tls given but %s does not offer STARTTLS: %.300s\n",
				    c->n, target_domain, c->in);
				exit(1);
			}
			sendf(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
			c->state = S_STARTTLS;
			c->in_len = 0;
			return;
		}
		sendf(c, "<db:result from='bench%d.test' to='%s'>%064d</db:result>", c->n, target_domain, 0);
		c->state = S_RESULT_SENT;
		c->in_len = 0;
	} else if (c->state == S_STARTTLS && strstr(c->in, "<proceed") != NULL) {
		/* nothing may follow <proceed/> in cleartext */
		c->in_len = 0;
		tls_start(c);
	} else if (c->state == S_STARTTLS && (strstr(c->in, "<failure") != NULL ||
	    strstr(c->in, "stream:error") != NULL)) {
		fprintf(stderr, "stream %d: STARTTLS refused: %.300s\n", c->n, c->in);
		exit(1);
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
record_latency(char *tag)
{
	char idbuf[64];
	long long t;

	if (attr(tag, "id", idbuf, sizeof(idbuf)) == NULL || idbuf[0] != 't')
		return;
	t = strtoll(idbuf + 1, NULL, 10);
	if (samples != NULL && nsamples < MAX_SAMPLES)
		samples[nsamples++] = (long)(now_us() - t);
}

/* reverse: the target returned a message. In the warm-up that is a
 * type='wait' error (e.g. its backoff after the previous run closed the
 * streams): send it again later; in the timed phase it is a failure. */
static void
bounced(char *tag)
{
	char from[256];
	int n;

	if (warming && nretry < nstreams && attr(tag, "from", from, sizeof(from)) != NULL &&
	    sscanf(from, "u@bench%d.test", &n) == 1 && strstr(tag, "type='error'") != NULL) {
		retry[nretry++] = n;
		return;
	}
	if (bounces++ == 0)
		snprintf(first_bounce, sizeof(first_bounce), "%s", tag);
}

static void
comp_input(struct conn *c, const char *secret)
{
	char *p, *gt, *keep, idbuf[128], digest_in[256];
	unsigned char md[SHA_DIGEST_LENGTH];
	char hex[SHA_DIGEST_LENGTH * 2 + 1];
	int i;

	c->in[c->in_len] = '\0';
	if (c->state == S_COMP_HANDSHAKE && (p = strstr(c->in, "<stream:stream")) != NULL &&
	    (gt = strchr(p, '>')) != NULL) {
		*gt = '\0';
		if (attr(p, "id", idbuf, sizeof(idbuf)) == NULL)
			idbuf[0] = '\0';
		snprintf(digest_in, sizeof(digest_in), "%s%s", idbuf, secret);
		SHA1((unsigned char *)digest_in, strlen(digest_in), md);
		for (i = 0; i < SHA_DIGEST_LENGTH; i++)
			sprintf(hex + 2 * i, "%02x", md[i]);
		sendf(c, "<handshake>%s</handshake>", hex);
		c->state = S_COMP_AUTHING;
		c->in_len = 0;
		return;
	}
	if (c->state == S_COMP_AUTHING) {
		if (strstr(c->in, "<handshake") != NULL) {
			c->state = S_COMP_READY;
			c->in_len = 0;
		} else if (strstr(c->in, "stream:error") != NULL) {
			fprintf(stderr, "component refused: %.300s\n", c->in);
			exit(1);
		}
		return;
	}
	if (c->state != S_COMP_READY)
		return;
	/* count messages; keep the tail in case a tag straddles reads */
	keep = NULL;
	for (p = c->in; (p = strstr(p, "<message")) != NULL; p += 8) {
		if (latency_mode || reverse_mode) {
			if ((gt = strchr(p, '>')) == NULL) {
				keep = p;	/* start tag cut: count it next time */
				break;
			}
			*gt = '\0';
			if (latency_mode)
				record_latency(p);
			else
				bounced(p);
			*gt = '>';
		}
		c->received++;
	}
	if (keep != NULL) {
		c->in_len -= (size_t)(keep - c->in);
		memmove(c->in, keep, c->in_len);
	} else if (c->in_len > 16) {
		/* keep 7 bytes: a "<message" cut by the read is counted next
		 * time, and 7 bytes cannot hold a whole one */
		memmove(c->in, c->in + c->in_len - 7, 7);
		c->in_len = 7;
	}
}

static const char *comp_secret = "";

/* Produce the next bounded piece of lazy output; 0 if there is none. */
static int
refill(struct conn *c)
{
	size_t before = c->out_len;

	if (c->to_send <= 0)
		return 0;
	if (c->kind == K_OUT && c->state == S_VALID) {
		for (; c->to_send > 0 && c->out_len < OUT_FILL; c->to_send--)
			appendf(c, "<message from='u@bench%d.test/r' to='sink@%s' type='chat' id='m%ld'>"
			    "<body>benchmark message 0123456789</body></message>", c->n, comp_domain, c->next_id++);
	} else if (c->kind == K_COMP && c->state == S_COMP_READY) {
		for (; c->to_send > 0 && c->out_len < OUT_FILL; c->to_send--, c->next_id++)
			appendf(c, "<message from='x@%s' to='u@bench%ld.test/r' type='chat' id='r%ld'>"
			    "<body>benchmark message 0123456789</body></message>", comp_domain,
			    c->next_id % nstreams + 1, c->next_id);
	}
	return c->out_len > before;
}

/* Write what is pending, refilling lazy output as it drains. */
static void
flush(struct conn *c)
{
	for (;;) {
		while (c->out_off < c->out_len) {
			ssize_t n = io_write(c, c->out + c->out_off, c->out_len - c->out_off);
			if (n <= 0)
				break;
			c->out_off += (size_t)n;
		}
		if (c->out_off < c->out_len)
			break;		/* blocked (or broken: the read side tells) */
		c->out_off = c->out_len = 0;
		if (!refill(c))
			break;
	}
	watch(c, c->out_off < c->out_len || c->read_wants_write ? EPOLLIN | EPOLLOUT : EPOLLIN,
	    EPOLL_CTL_MOD);
}

static void
conn_free(struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	close(c->fd);
	conns[c->fd] = NULL;
	if (c->kind == K_OUT && outs != NULL && c->n >= 1 && c->n <= nstreams)
		outs[c->n - 1] = NULL;
	free(c->in);
	free(c->out);
	free(c);
}

static void
handle(struct conn *c, uint32_t events)
{
	if (c->tls == T_HANDSHAKE) {
		tls_step(c);
		return;
	}
	if (events & EPOLLOUT) {
		if (c->state == S_CONNECTING && c->kind == K_OUT) {
			c->state = S_OPENED;
			send_header(c);
		}
		flush(c);
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c->read_wants_write) {
		if (c->in == NULL && (c->in = malloc(BUF_MAX + 1)) == NULL)
			die("malloc");
		for (;;) {
			ssize_t n = io_read(c, c->in + c->in_len, BUF_MAX - c->in_len);
			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				if (c->kind == K_OUT && (c->state != S_VALID || c->to_send > 0 ||
				    c->out_off < c->out_len)) {
					fprintf(stderr, "stream %d closed by the target: %.300s\n", c->n,
					    c->in_len ? c->in : "");
					exit(1);
				}
				if (c->kind == K_COMP) {
					fprintf(stderr, "component stream closed by the target: %.300s\n",
					    c->in_len ? c->in : "");
					exit(1);
				}
				conn_free(c);
				return;
			}
			if (n < 0)
				break;
			c->in_len += (size_t)n;
			if (c->kind == K_AUTH)
				auth_input(c);
			else if (c->kind == K_OUT)
				out_input(c);
			else if (c->kind == K_COMP)
				comp_input(c, comp_secret);
			if (c->tls == T_HANDSHAKE)
				return;	/* the socket now belongs to TLS */
			/* only after parsing: a full read is ~8500 messages */
			if (c->in_len >= BUF_MAX - 1)
				c->in_len = 0;	/* nothing we wait for is that large */
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

static struct conn *comp;

/* On a timeout, say where things stand: which side stalled. */
static void
progress(void)
{
	long unsent = 0, pending = 0, blocked = 0;
	int i;

	for (i = 0; i < MAX_CONNS + 64; i++) {
		struct conn *c = conns[i];
		if (c == NULL || (c->kind != K_OUT && c->kind != K_COMP))
			continue;
		unsent += c->to_send;
		pending += (long)(c->out_len - c->out_off);
		blocked += c->out_off < c->out_len;
	}
	fprintf(stderr, "  valid %ld, component received %ld, authority received %ld, "
	    "unsent %ld messages, %ld bytes pending on %ld conns\n", valid_count,
	    comp != NULL ? comp->received : 0, auth_messages, unsent, pending, blocked);
}

static void
run_until(int (*done)(void), double limit, const char *phase)
{
	double deadline = now_s() + limit;

	while (!done()) {
		if (now_s() > deadline) {
			fprintf(stderr, "%s: not done in %.0f s\n", phase, limit);
			progress();
			exit(1);
		}
		pump(100);
	}
}

static long want_valid, want_messages;

static int all_valid(void) { return valid_count >= want_valid; }
static int all_messages(void) { return comp != NULL && comp->received >= want_messages; }
static int
all_auth_messages(void)
{
	static double retry_at;
	long i;

	/* the component gets nothing in reverse unless the target bounces */
	if (bounces > 0) {
		fprintf(stderr, "reverse: the target bounced %ld message(s), first: %s\n",
		    bounces, first_bounce);
		exit(1);
	}
	if (nretry > 0 && retry_at == 0)
		retry_at = now_s() + 1;
	if (nretry > 0 && now_s() >= retry_at) {
		for (i = 0; i < nretry; i++)
			sendf(comp, "<message from='x@%s' to='u@bench%ld.test/r' type='chat' id='w%ld'>"
			    "<body>benchmark message 0123456789</body></message>", comp_domain, retry[i], retry[i]);
		retried += nretry;
		nretry = 0;
		retry_at = 0;
	}
	return auth_messages >= want_messages;
}
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
	if ((c = calloc(1, sizeof(*c))) == NULL)
		die("calloc");
	c->fd = fd;
	c->kind = K_AUTH_LISTEN;
	conns[fd] = c;
	watch(c, EPOLLIN, EPOLL_CTL_ADD);
}

/* Open STREAMS remote streams, BATCH at a time (each batch validated before
 * the next; the untimed setups use small batches so that a burst of DNS
 * queries at the target does not fail the run). */
static double
open_streams(const char *target, int streams, int batch)
{
	struct sockaddr_in sin = addr_of(target);
	double t0 = now_s();
	int i;

	if (streams < 1 || streams > MAX_CONNS / 2) {
		fprintf(stderr, "STREAMS must be 1..%d\n", MAX_CONNS / 2);
		exit(2);
	}
	nstreams = streams;
	if ((outs = calloc((size_t)streams, sizeof(*outs))) == NULL)
		die("calloc");
	for (i = 1; i <= streams; i++) {
		struct conn *c = connect_to(&sin, K_OUT);
		c->n = i;
		c->t_start = now_s();
		outs[i - 1] = c;
		/* serve events while opening, so the target's accept queue and
		 * our own authority do not stall behind the connect loop */
		if (i % 50 == 0)
			pump(0);
		if (i % batch == 0 || i == streams) {
			want_valid = i;
			run_until(all_valid, PHASE_LIMIT_S, "dialback");
		}
	}
	return now_s() - t0;
}

static void
open_component(const char *addr, const char *domain, const char *secret)
{
	struct sockaddr_in csin = addr_of(addr);

	comp_secret = secret;
	comp_domain = domain;
	comp = connect_to(&csin, K_COMP);
	comp->state = S_COMP_HANDSHAKE;
	sendf(comp, "<stream:stream xmlns='jabber:component:accept' "
	    "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", domain);
	run_until(comp_ready, 10, "component");
}

static int
cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

/* Remote streams -> component at a fixed total rate; arrival delays. */
static int
latency(int streams, long rate, double seconds)
{
	long total = (long)(rate * seconds), sched = 0, i;
	double t0, end, deadline, now;
	struct conn **touched;
	int ntouched;

	if (rate < 1 || seconds <= 0) {
		fprintf(stderr, "RATE and SECONDS must be positive\n");
		return 2;
	}
	if ((samples = malloc(MAX_SAMPLES * sizeof(*samples))) == NULL ||
	    (touched = calloc((size_t)streams, sizeof(*touched))) == NULL)
		die("malloc");
	latency_mode = 1;
	t0 = now_s();
	end = t0 + seconds;
	deadline = end + 10;
	while ((now = now_s()) < deadline) {
		if (sched < total) {
			long due = (long)((now - t0) * (double)rate) + 1;

			if (due > total)
				due = total;
			ntouched = 0;
			while (sched < due) {
				struct conn *c = outs[sched % streams];
				if (c == NULL) {
					fprintf(stderr, "stream %ld is gone\n", sched % streams + 1);
					return 1;
				}
				/* a backed-up stream delays the schedule
				 * (bounded memory) rather than growing */
				if (c->out_len - c->out_off >= BUF_MAX)
					break;
				appendf(c, "<message from='u@bench%d.test/r' to='sink@%s' type='chat' "
				    "id='t%lld'><body>benchmark message 0123456789</body></message>",
				    c->n, comp_domain, now_us());
				if (!c->dirty) {
					c->dirty = 1;
					touched[ntouched++] = c;
				}
				sched++;
			}
			for (i = 0; i < ntouched; i++) {
				touched[i]->dirty = 0;
				flush(touched[i]);
			}
		} else if (comp->received >= sched)
			break;
		pump(1);
	}
	if (sched < total)
		fprintf(stderr, "latency: only %ld of %ld messages sent in time: the target fell behind\n",
		    sched, total);
	if (comp->received < sched * 99 / 100 || sched < total * 99 / 100) {
		fprintf(stderr, "latency: %ld of %ld messages arrived within %.0f s\n",
		    comp->received, total, seconds + 10);
		return 1;
	}
	if (nsamples == 0) {
		fprintf(stderr, "latency: no timestamps in the received messages\n");
		return 1;
	}
	qsort(samples, (size_t)nsamples, sizeof(*samples), cmp_long);
	printf("RESULT latency p50 %ld us p99 %ld us (%ld messages at %ld msg/s over %d streams)\n",
	    samples[nsamples / 2], samples[nsamples * 99 / 100], comp->received, rate, streams);
	return 0;
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
	static char rbuf[65536], chunk[16384];
	size_t total = (size_t)n * (size_t)messages, got = 0, sent = 0, off = 0, chunk_len;

	static const char hdr[] = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>";

	if (XML_Parse(p, hdr, (int)strlen(hdr), 0) != XML_STATUS_OK)
		die("expat header");
	t0 = now_s();
	for (i = 0; i < messages; i++)
		if (XML_Parse(p, stanza, n, 0) != XML_STATUS_OK)
			die("expat");
	printf("RESULT limit_expat %.0f msg/s\n", messages / (now_s() - t0));
	XML_ParserFree(p);
	/* servers write in batches: whole stanzas, ~16 KiB per write */
	for (chunk_len = 0; chunk_len + (size_t)n <= sizeof(chunk); chunk_len += (size_t)n)
		memcpy(chunk + chunk_len, stanza, (size_t)n);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		die("socketpair");
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	t0 = now_s();
	while (got < total) {
		while (sent < total) {
			size_t want = chunk_len - off;
			ssize_t w;
			if (want > total - sent)
				want = total - sent;
			if ((w = write(sv[0], chunk + off, want)) <= 0)
				break;
			sent += (size_t)w;
			off = (off + (size_t)w) % chunk_len;
		}
		for (;;) {
			ssize_t r = read(sv[1], rbuf, sizeof(rbuf));
			if (r <= 0)
				break;
			got += (size_t)r;
		}
	}
	printf("RESULT limit_socketpair %.0f msg/s\n", messages / (now_s() - t0));
}

int
main(int argc, char **argv)
{
	double t;
	int i, j;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);	/* a closed peer shows up as EOF instead */
	/* --tls anywhere after the workload name */
	for (i = j = 1; i < argc; i++)
		if (i >= 2 && strcmp(argv[i], "--tls") == 0)
			use_tls = 1;
		else
			argv[j++] = argv[i];
	argc = j;
	argv[argc] = NULL;
	if (argc >= 3 && strcmp(argv[1], "limit") == 0) {
		limit(atol(argv[2]));
		return 0;
	}
	if (argc < 6) {
		fprintf(stderr, "usage: see the comment at the top of bench/loadgen.c\n");
		return 2;
	}
	if (use_tls) {
		if ((tls_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
			tls_fail(&(struct conn){ .n = 0 }, "context");
		/* the targets' certificates are self-signed test ones */
		SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
		    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
		SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	}
	if ((ep = epoll_create1(0)) == -1)
		die("epoll");
	target_domain = argv[3];
	start_auth(argv[4]);
	if (strcmp(argv[1], "handshakes") == 0) {
		int streams = atoi(argv[5]);
		t = open_streams(argv[2], streams, streams);
		printf("RESULT handshakes %.1f streams/s (%d streams in %.3f s)\n", streams / t, streams, t);
		return 0;
	}
	if (strcmp(argv[1], "idle") == 0 && argc >= 7) {
		int streams = atoi(argv[5]);
		t = open_streams(argv[2], streams, streams);
		printf("RESULT idle_open %d streams in %.3f s\n", streams, t);
		printf("READY\n");
		hold_until = now_s() + atof(argv[6]);
		run_until(held, atof(argv[6]) + 5, "hold");
		return 0;
	}
	if (strcmp(argv[1], "throughput") == 0 && argc >= 10) {
		int streams = atoi(argv[5]);
		long messages = atol(argv[6]), per;
		double t0;

		open_component(argv[7], argv[8], argv[9]);
		open_streams(argv[2], streams, SETUP_BATCH);
		per = messages / streams;
		want_messages = per * streams;
		t0 = now_s();
		for (i = 0; i < streams; i++) {
			if (outs[i] == NULL) {
				fprintf(stderr, "stream %d closed after dialback\n", i + 1);
				return 1;
			}
			outs[i]->to_send = per;
			flush(outs[i]);
		}
		run_until(all_messages, phase_limit(want_messages), "throughput");
		t = now_s() - t0;
		printf("RESULT throughput %.0f msg/s (%ld messages over %d streams in %.3f s)\n",
		    want_messages / t, want_messages, streams, t);
		return 0;
	}
	if (strcmp(argv[1], "reverse") == 0 && argc >= 10) {
		int streams = atoi(argv[5]);
		long messages = atol(argv[6]);
		double t0;

		if (streams < 1 || streams > MAX_CONNS / 2 || messages < 1) {
			fprintf(stderr, "STREAMS must be 1..%d, MESSAGES positive\n", MAX_CONNS / 2);
			return 2;
		}
		nstreams = streams;
		reverse_mode = warming = 1;
		if ((retry = calloc((size_t)streams, sizeof(*retry))) == NULL)
			die("calloc");
		open_component(argv[7], argv[8], argv[9]);
		/* warm-up, not timed: one message per domain makes the target
		 * open (and dialback) its streams to all of them; in batches,
		 * like open_streams */
		for (i = 0; i < streams; i += SETUP_BATCH) {
			comp->to_send = streams - i < SETUP_BATCH ? streams - i : SETUP_BATCH;
			want_messages = i + comp->to_send;
			flush(comp);
			run_until(all_auth_messages, PHASE_LIMIT_S, "reverse warm-up");
		}
		if (retried > 0)
			fprintf(stderr, "reverse warm-up: %ld message(s) returned by the target and sent again\n",
			    retried);
		warming = 0;
		auth_messages = 0;
		want_messages = messages;
		t0 = now_s();
		comp->to_send = messages;
		flush(comp);
		run_until(all_auth_messages, phase_limit(messages), "reverse");
		t = now_s() - t0;
		printf("RESULT reverse %.0f msg/s (%ld messages over %d streams in %.3f s)\n",
		    messages / t, messages, streams, t);
		return 0;
	}
	if (strcmp(argv[1], "latency") == 0 && argc >= 11) {
		int streams = atoi(argv[5]);

		open_component(argv[8], argv[9], argv[10]);
		open_streams(argv[2], streams, SETUP_BATCH);
		return latency(streams, atol(argv[6]), atof(argv[7]));
	}
	fprintf(stderr, "unknown workload %s (or missing arguments)\n", argv[1]);
	return 2;
}
