/* s2s_fuzzer.c - libFuzzer target for the s2s state machine: each input is
 * a whole byte stream from a peer, fed over a socketpair into an inbound
 * connection of an in-process worker (real parser, dialback logic, store,
 * router, local answers). Name servers point at a closed loopback port, so
 * verification attempts fail fast and nothing leaves the machine. */
#include "config.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "conn.h"
#include "dialback.h"
#include "iplimit.h"
#include "log.h"
#include "resolver.h"
#include "s2s.h"
#include "store.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

static struct worker w;

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[200], path[256], err[512];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/dialbackd-fuzz.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/fuzz.conf", dir);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fprintf(f, "[server]\nstore = %s/store\nsecret_file = %s/secret\nstore_size = 64M\n"
	    "[s2s]\nlisten = 127.0.0.1:1\nmax_new_per_ip = 1000000\nmax_streams_per_ip = 1000000\n"
	    "[components]\nlisten = none\n[domain d1.test]\ncomponent_secret = s\n"
	    "[domain d2.test]\n", dir, dir);
	fclose(f);
	chmod(path, 0600);
	/* a peer closing its end must not kill the process (the daemon too
	 * ignores SIGPIPE) */
	signal(SIGPIPE, SIG_IGN);
	if ((w.conf = conf_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz config: %s\n", err);
		abort();
	}
	log_open("stderr", LOG_LVL_ERR);
	w.slot = 0;
	w.pid = getpid();
	TAILQ_INIT(&w.conns);
	TAILQ_INIT(&w.paused);
	if (dialback_secret_digest("fuzzing-secret-0123456789", 25, w.secret_digest) == -1 ||
	    (w.store = store_open(w.conf->store, w.conf->store_size, STORE_NOSYNC, 16, err, sizeof(err))) == NULL ||
	    (w.base = event_base_new()) == NULL ||
	    (w.resolver = resolver_new(w.base, err, sizeof(err))) == NULL ||
	    resolver_set_servers(w.resolver, "127.0.0.1:9") == -1 ||
	    (w.tls = tls_contexts_new(w.conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz setup: %s\n", err);
		abort();
	}
}

static void
spin(int peer, int rounds)
{
	char buf[65536];
	int i;

	for (i = 0; i < rounds; i++) {
		event_base_loop(w.base, EVLOOP_NONBLOCK);
		while (peer != -1 && read(peer, buf, sizeof(buf)) > 0)
			;	/* whatever dialbackd answers is discarded */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in sin;
	struct iplimit_key key;
	const char *why;
	int sv[2];
	size_t off = 0;

	if (w.base == NULL)
		setup();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	iplimit_key_from((struct sockaddr *)&sin, &key);
	if (!iplimit_admit(&key, 1000000, 1000000, &why) ||
	    s2s_in_accept(&w, sv[0], (struct sockaddr *)&sin, &key) == -1) {
		close(sv[1]);
		return 0;
	}
	/* Feed in pieces so the parser sees several reads. */
	while (off < size) {
		size_t n = size - off < 512 ? size - off : 512;
		ssize_t r = write(sv[1], data + off, n);
		if (r <= 0)
			break;
		off += (size_t)r;
		spin(sv[1], 2);
	}
	spin(sv[1], 4);
	close(sv[1]);
	spin(-1, 4);
	/* Tear everything down so inputs do not affect each other. */
	s2s_out_shutdown(&w);
	while (!TAILQ_EMPTY(&w.conns))
		conn_abort(TAILQ_FIRST(&w.conns), "fuzz input done");
	spin(-1, 2);
	return 0;
}
