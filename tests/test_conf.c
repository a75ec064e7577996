/* test_conf.c - dialbackd.conf parsing: defaults, every key, listen lists,
 * every kind of error with its exact "FILE:LINE: [section] key:" prefix,
 * lookups, the shipped example, and a golden conf_print(). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "test_main.h"
#include "util.h"

#define DATADIR	TOP_SRCDIR "/tests/data/conf"

static char *cert_path;		/* readable files in the test directory */
static char *key_path;

/* Writes text to a fresh file (0600: some hold component secrets). */
static char *
write_conf(const char *text)
{
	static unsigned n;
	char name[32];
	char *path;

	snprintf(name, sizeof(name), "conf-%u.conf", ++n);
	path = test_write_file(test_tmpdir(), name, text);
	if (chmod(path, 0600) == -1)
		abort();
	return path;
}

static struct conf *
load_text(const char *text, char **pathp, char *err, size_t errlen)
{
	char *path = write_conf(text);
	struct conf *c = conf_load(path, err, errlen);

	if (pathp != NULL)
		*pathp = path;
	else
		free(path);
	return c;
}

/* "%s" in text is replaced by the test certificate, then key, path. */
static char *
with_files(const char *fmt)
{
	struct strbuf sb;
	const char *p;
	int n = 0;

	strbuf_init(&sb, 0);
	for (p = fmt; *p != '\0'; p++) {
		if (p[0] == '%' && p[1] == 's') {
			if (strbuf_appends(&sb, n++ % 2 == 0 ? cert_path :
			    key_path) == -1)
				abort();
			p++;
		} else if (strbuf_append(&sb, p, 1) == -1)
			abort();
	}
	return strbuf_steal(&sb, NULL);
}

/* Loads text, expecting failure with exactly "PATH:LINE: rest" ("PATH:
 * rest" when line is 0). */
static void
expect_error_at(const char *text, int line, const char *rest, int srcline)
{
	char err[2048], want[2048];
	char *path;
	struct conf *c;

	c = load_text(text, &path, err, sizeof(err));
	CU_ASSERT_PTR_NULL(c);
	if (line > 0)
		snprintf(want, sizeof(want), "%s:%d: %s", path, line, rest);
	else
		snprintf(want, sizeof(want), "%s: %s", path, rest);
	if (strcmp(err, want) != 0)
		fprintf(stderr, "\ntest_conf.c:%d:\n  want: %s\n  got:  %s\n",
		    srcline, want, err);
	CU_ASSERT_STRING_EQUAL(err, want);
	conf_free(c);
	free(path);
}

#define expect_error(text, line, rest) \
	expect_error_at((text), (line), (rest), __LINE__)

static char *
read_file(const char *path)
{
	struct strbuf sb;
	char buf[4096];
	size_t n;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		perror(path);
		abort();
	}
	strbuf_init(&sb, 0);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (strbuf_append(&sb, buf, n) == -1)
			abort();
	if (ferror(f))
		abort();
	fclose(f);
	return strbuf_steal(&sb, NULL);
}

static char *
replace_all(const char *s, const char *from, const char *to)
{
	struct strbuf sb;
	const char *p;
	size_t flen = strlen(from);

	strbuf_init(&sb, 0);
	while ((p = strstr(s, from)) != NULL) {
		if (strbuf_append(&sb, s, (size_t)(p - s)) == -1 ||
		    strbuf_appends(&sb, to) == -1)
			abort();
		s = p + flen;
	}
	if (strbuf_appends(&sb, s) == -1)
		abort();
	return strbuf_steal(&sb, NULL);
}

static char *
print_to_string(const struct conf *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if ((f = open_memstream(&buf, &len)) == NULL)
		abort();
	conf_print(c, f);
	if (ferror(f) || fclose(f) != 0)
		abort();
	return buf;
}

static int
suite_init(void)
{
	cert_path = test_write_file(test_tmpdir(), "cert.pem", "cert\n");
	key_path = test_write_file(test_tmpdir(), "key.pem", "key\n");
	return 0;
}

static int
suite_clean(void)
{
	free(cert_path);
	free(key_path);
	cert_path = key_path = NULL;
	return 0;
}

/* ---- valid files --------------------------------------------------------- */

static void
test_minimal_defaults(void)
{
	char err[1024] = "";
	char *path;
	struct conf *c = load_text("[domain example.org]\n", &path, err,
	    sizeof(err));

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_STRING_EQUAL(c->path, path);
	CU_ASSERT_EQUAL(c->workers, 1);
	CU_ASSERT_PTR_NULL(c->user);
	CU_ASSERT_PTR_NULL(c->group);
	CU_ASSERT_STRING_EQUAL(c->pidfile, RUNSTATEDIR "/dialbackd.pid");
	CU_ASSERT_STRING_EQUAL(c->store, LOCALSTATEDIR "/lib/dialbackd");
	CU_ASSERT_EQUAL(c->store_size, 64ULL << 20);
	CU_ASSERT_FALSE(c->store_sync);
	CU_ASSERT_STRING_EQUAL(c->secret_file,
	    LOCALSTATEDIR "/lib/dialbackd/secret");
	CU_ASSERT_EQUAL(c->log_level, LOG_LVL_INFO);
	CU_ASSERT_STRING_EQUAL(c->log, "syslog");

	CU_ASSERT_EQUAL_FATAL(c->n_s2s_listen, 1);
	CU_ASSERT_STRING_EQUAL(c->s2s_listen[0].text, "*:5269");
	CU_ASSERT_EQUAL(c->s2s_listen[0].addr.ss_family, AF_INET6);
	CU_ASSERT_EQUAL(c->s2s_listen[0].addrlen, sizeof(struct sockaddr_in6));
	CU_ASSERT_EQUAL(c->tls, TLS_MODE_OPTIONAL);
	CU_ASSERT_EQUAL(c->dialback_timeout, 30);
	CU_ASSERT_EQUAL(c->connect_timeout, 10);
	CU_ASSERT_EQUAL(c->idle_timeout, 600);
	CU_ASSERT_EQUAL(c->keepalive_interval, 300);
	CU_ASSERT_EQUAL(c->max_stanza_size, 256 * 1024);
	CU_ASSERT_EQUAL(c->max_connections, 10000);
	CU_ASSERT_EQUAL(c->queue_max, 1000);
	CU_ASSERT_EQUAL(c->queue_max_age, 60);
	CU_ASSERT_EQUAL(c->key_lifetime, 300);
	CU_ASSERT_EQUAL(c->max_stanza_size_unauth, 10000);
	CU_ASSERT_EQUAL(c->max_pending_dialback, 16);
	CU_ASSERT_EQUAL(c->max_element_depth, 64);
	CU_ASSERT_EQUAL(c->max_element_attributes, 64);
	CU_ASSERT_EQUAL(c->max_element_children, 10000);
	CU_ASSERT_EQUAL(c->max_streams_per_ip, 64);
	CU_ASSERT_EQUAL(c->max_new_per_ip, 50);
	CU_ASSERT_EQUAL(c->output_buffer_max, 4u << 20);
	CU_ASSERT_EQUAL(c->n_s2s_allow, 0);
	CU_ASSERT_PTR_NULL(c->s2s_allow);
	CU_ASSERT_EQUAL(c->n_s2s_deny, 0);
	CU_ASSERT_PTR_NULL(c->s2s_deny);

	CU_ASSERT_EQUAL_FATAL(c->n_component_listen, 1);
	CU_ASSERT_STRING_EQUAL(c->component_listen[0].text, "127.0.0.1:5347");
	CU_ASSERT_EQUAL(c->component_listen[0].addr.ss_family, AF_INET);

	CU_ASSERT_PTR_NULL(c->tls_certificate);
	CU_ASSERT_PTR_NULL(c->tls_key);
	CU_ASSERT_PTR_NULL(c->tls_ciphers);

	CU_ASSERT_EQUAL_FATAL(c->n_domains, 1);
	CU_ASSERT_STRING_EQUAL(c->domains[0].name, "example.org");
	CU_ASSERT_PTR_NULL(c->domains[0].certificate);
	CU_ASSERT_PTR_NULL(c->domains[0].key);
	CU_ASSERT_PTR_NULL(c->domains[0].component_secret);
	CU_ASSERT_EQUAL(c->n_hosts, 0);
	conf_free(c);
	free(path);
}

static void
test_every_key(void)
{
	char err[1024] = "";
	char *text = with_files(
	    "; a comment\n"
	    "# another\n"
	    "[server]\n"
	    "workers = 8\n"
	    "user = _dialbackd\n"
	    "group = nogroup\n"
	    "pidfile = /run/dbd.pid\n"
	    "store = /var/db/dbd\n"
	    "store_size = 2G\n"
	    "store_sync = yes\n"
	    "secret_file = /var/db/dbd/secret\n"
	    "log_level = debug\n"
	    "log = /var/log/dbd.log\n"
	    "\n"
	    "[s2s]\n"
	    "listen = 192.0.2.7:5269\n"
	    "tls = off\n"
	    "dialback_timeout = 45\n"
	    "connect_timeout = 1m\n"
	    "idle_timeout = 2h\n"
	    "keepalive_interval = 0s\n"
	    "max_stanza_size = 64K\n"
	    "max_connections = 20\n"
	    "queue_max = 7\n"
	    "queue_max_age = 90s\n"
	    "key_lifetime = 1d   ; inline comment\n"
	    "allow = a.example\n"
	    "deny = *.a.example\n"
	    "[components]\n"
	    "listen = [::1]\n"
	    "[tls]\n"
	    "certificate = %s\n"
	    "key = %s\n"
	    "ciphers = HIGH:!aNULL:!MD5\n"
	    "[domain a.example]\n"
	    "certificate = %s\n"
	    "key = %s\n"
	    "component_secret = sesame\n"
	    "[hosts]\n"
	    "b.example = 192.0.2.8\n");
	struct conf *c = load_text(text, NULL, err, sizeof(err));

	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->workers, 8);
	CU_ASSERT_STRING_EQUAL(c->user, "_dialbackd");
	CU_ASSERT_STRING_EQUAL(c->group, "nogroup");
	CU_ASSERT_STRING_EQUAL(c->pidfile, "/run/dbd.pid");
	CU_ASSERT_STRING_EQUAL(c->store, "/var/db/dbd");
	CU_ASSERT_EQUAL(c->store_size, 2ULL << 30);
	CU_ASSERT_TRUE(c->store_sync);
	CU_ASSERT_STRING_EQUAL(c->secret_file, "/var/db/dbd/secret");
	CU_ASSERT_EQUAL(c->log_level, LOG_LVL_DEBUG);
	CU_ASSERT_STRING_EQUAL(c->log, "/var/log/dbd.log");
	CU_ASSERT_EQUAL_FATAL(c->n_s2s_listen, 1);
	CU_ASSERT_STRING_EQUAL(c->s2s_listen[0].text, "192.0.2.7:5269");
	CU_ASSERT_EQUAL(c->tls, TLS_MODE_OFF);
	CU_ASSERT_EQUAL(c->dialback_timeout, 45);
	CU_ASSERT_EQUAL(c->connect_timeout, 60);
	CU_ASSERT_EQUAL(c->idle_timeout, 7200);
	CU_ASSERT_EQUAL(c->keepalive_interval, 0);
	CU_ASSERT_EQUAL(c->max_stanza_size, 65536);
	CU_ASSERT_EQUAL(c->max_connections, 20);
	CU_ASSERT_EQUAL(c->queue_max, 7);
	CU_ASSERT_EQUAL(c->queue_max_age, 90);
	CU_ASSERT_EQUAL(c->key_lifetime, 86400);
	CU_ASSERT_EQUAL_FATAL(c->n_s2s_allow, 1);
	CU_ASSERT_STRING_EQUAL(c->s2s_allow[0], "a.example");
	CU_ASSERT_EQUAL_FATAL(c->n_s2s_deny, 1);
	CU_ASSERT_STRING_EQUAL(c->s2s_deny[0], "*.a.example");
	CU_ASSERT_EQUAL_FATAL(c->n_component_listen, 1);
	CU_ASSERT_STRING_EQUAL(c->component_listen[0].text, "[::1]:5347");
	CU_ASSERT_STRING_EQUAL(c->tls_certificate, cert_path);
	CU_ASSERT_STRING_EQUAL(c->tls_key, key_path);
	CU_ASSERT_STRING_EQUAL(c->tls_ciphers, "HIGH:!aNULL:!MD5");
	CU_ASSERT_EQUAL_FATAL(c->n_domains, 1);
	CU_ASSERT_STRING_EQUAL(c->domains[0].name, "a.example");
	CU_ASSERT_STRING_EQUAL(c->domains[0].certificate, cert_path);
	CU_ASSERT_STRING_EQUAL(c->domains[0].key, key_path);
	CU_ASSERT_STRING_EQUAL(c->domains[0].component_secret, "sesame");
	CU_ASSERT_EQUAL_FATAL(c->n_hosts, 1);
	CU_ASSERT_STRING_EQUAL(c->hosts[0].domain, "b.example");
	CU_ASSERT_STRING_EQUAL(c->hosts[0].host, "192.0.2.8");
	CU_ASSERT_EQUAL(c->hosts[0].port, 5269);
	conf_free(c);
	free(text);
}

/* "key =" leaves an optional key unset, which is how conf_print() writes
 * unset keys. */
static void
test_empty_optional(void)
{
	char err[1024] = "";
	struct conf *c = load_text(
	    "[server]\nuser =\ngroup =\n"
	    "[tls]\ncertificate =\nkey =\nciphers =\n"
	    "[domain example.org]\ncertificate =\nkey =\ncomponent_secret =\n",
	    NULL, err, sizeof(err));

	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NULL(c->user);
	CU_ASSERT_PTR_NULL(c->group);
	CU_ASSERT_PTR_NULL(c->tls_certificate);
	CU_ASSERT_PTR_NULL(c->tls_key);
	CU_ASSERT_PTR_NULL(c->tls_ciphers);
	CU_ASSERT_PTR_NULL(c->domains[0].certificate);
	CU_ASSERT_PTR_NULL(c->domains[0].component_secret);
	conf_free(c);
}

static void
test_listen_lists(void)
{
	char err[1024] = "";
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	struct conf *c = load_text(
	    "[s2s]\n"
	    "listen = 192.0.2.1:5269 [::1]:5269\n"
	    "listen = 10.0.0.1,10.0.0.2:5270 ,  [2001:db8::2]\n"
	    "listen = 127.0.0.2:1\n"
	    "   127.0.0.3:2\n"		/* continuation line */
	    "[components]\n"
	    "listen = *:6000\n"
	    "[domain example.org]\n", NULL, err, sizeof(err));

	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL_FATAL(c->n_s2s_listen, 7);
	CU_ASSERT_STRING_EQUAL(c->s2s_listen[0].text, "192.0.2.1:5269");
	CU_ASSERT_STRING_EQUAL(c->s2s_listen[1].text, "[::1]:5269");
	CU_ASSERT_STRING_EQUAL(c->s2s_listen[2].text, "10.0.0.1:5269");
	CU_ASSERT_STRING_EQUAL(c->s2s_listen[3].text, "10.0.0.2:5270");
	CU_ASSERT_STRING_EQUAL(c->s2s_listen[4].text, "[2001:db8::2]:5269");
	CU_ASSERT_STRING_EQUAL(c->s2s_listen[5].text, "127.0.0.2:1");
	CU_ASSERT_STRING_EQUAL(c->s2s_listen[6].text, "127.0.0.3:2");

	sin = (const struct sockaddr_in *)&c->s2s_listen[0].addr;
	CU_ASSERT_EQUAL(sin->sin_family, AF_INET);
	CU_ASSERT_EQUAL(ntohs(sin->sin_port), 5269);
	CU_ASSERT_EQUAL(sin->sin_addr.s_addr, htonl(0xc0000201));
	CU_ASSERT_EQUAL(c->s2s_listen[0].addrlen, sizeof(*sin));
	sin6 = (const struct sockaddr_in6 *)&c->s2s_listen[1].addr;
	CU_ASSERT_EQUAL(sin6->sin6_family, AF_INET6);
	CU_ASSERT_EQUAL(ntohs(sin6->sin6_port), 5269);
	CU_ASSERT_TRUE(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));

	CU_ASSERT_EQUAL_FATAL(c->n_component_listen, 1);
	CU_ASSERT_STRING_EQUAL(c->component_listen[0].text, "*:6000");
	conf_free(c);
}

/* allow and deny: several patterns per value, repeated keys and indented
 * continuation lines accumulate, lower-cased, a repeated pattern dropped. */
static void
test_acl_lists(void)
{
	char err[1024] = "";
	char *out;
	struct conf *c = load_text(
	    "[s2s]\n"
	    "allow = Example.ORG *.Friends.Example,partner.example\n"
	    "allow =\n"				/* adds nothing */
	    "deny = spam.friends.example\n"
	    "allow = , *.friends.example ,, EXAMPLE.org\n"
	    "allow = x_y.example\n"
	    "   z-1.example\n"			/* continuation line */
	    "deny = *\n"
	    "deny = *\n"
	    "[domain example.net]\n", NULL, err, sizeof(err));

	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL_FATAL(c->n_s2s_allow, 5);
	CU_ASSERT_STRING_EQUAL(c->s2s_allow[0], "example.org");
	CU_ASSERT_STRING_EQUAL(c->s2s_allow[1], "*.friends.example");
	CU_ASSERT_STRING_EQUAL(c->s2s_allow[2], "partner.example");
	CU_ASSERT_STRING_EQUAL(c->s2s_allow[3], "x_y.example");
	CU_ASSERT_STRING_EQUAL(c->s2s_allow[4], "z-1.example");
	CU_ASSERT_EQUAL_FATAL(c->n_s2s_deny, 2);
	CU_ASSERT_STRING_EQUAL(c->s2s_deny[0], "spam.friends.example");
	CU_ASSERT_STRING_EQUAL(c->s2s_deny[1], "*");
	out = print_to_string(c);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nallow = example.org\n"
	    "allow = *.friends.example\nallow = partner.example\n"
	    "allow = x_y.example\nallow = z-1.example\n"
	    "deny = spam.friends.example\ndeny = *\n"));
	free(out);
	conf_free(c);

	/* empty values only: both lists stay empty, and print as "key =" */
	c = load_text("[s2s]\nallow =\ndeny = ,\n[domain example.net]\n",
	    NULL, err, sizeof(err));
	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->n_s2s_allow, 0);
	CU_ASSERT_EQUAL(c->n_s2s_deny, 0);
	out = print_to_string(c);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nallow =\ndeny =\n"));
	free(out);
	conf_free(c);

	/* many patterns: the lists grow */
	c = load_text("[s2s]\n"
	    "allow = a1.example a2.example a3.example a4.example a5.example\n"
	    "allow = a6.example a7.example a8.example a9.example\n"
	    "[domain example.net]\n", NULL, err, sizeof(err));
	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL_FATAL(c->n_s2s_allow, 9);
	CU_ASSERT_STRING_EQUAL(c->s2s_allow[8], "a9.example");
	conf_free(c);
}

static void
test_components_none(void)
{
	char err[1024] = "";
	char *out;
	struct conf *c = load_text("[components]\nlisten = none\n"
	    "[domain example.org]\n", NULL, err, sizeof(err));

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->n_component_listen, 0);
	out = print_to_string(c);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "[components]\nlisten = none\n"));
	free(out);
	conf_free(c);
}

static void
test_hosts(void)
{
	char err[1024] = "";
	const struct conf_host *h;
	struct conf *c = load_text(
	    "[domain example.org]\n"
	    "[hosts]\n"
	    "jabber.example = xmpp.jabber.example\n"
	    "V6.Example = [2001:db8::1]:5999\n"
	    "v4.example = 192.0.2.1:5270\n", NULL, err, sizeof(err));

	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->n_hosts, 3);
	h = conf_host_find(c, "JABBER.example");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_STRING_EQUAL(h->domain, "jabber.example");
	CU_ASSERT_STRING_EQUAL(h->host, "xmpp.jabber.example");
	CU_ASSERT_EQUAL(h->port, CONF_DEFAULT_S2S_PORT);
	h = conf_host_find(c, "v6.example");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_STRING_EQUAL(h->host, "2001:db8::1");
	CU_ASSERT_EQUAL(h->port, 5999);
	h = conf_host_find(c, "v4.EXAMPLE");
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_STRING_EQUAL(h->host, "192.0.2.1");
	CU_ASSERT_EQUAL(h->port, 5270);
	CU_ASSERT_PTR_NULL(conf_host_find(c, "example.org"));
	CU_ASSERT_PTR_NULL(conf_host_find(c, "v4.example.net"));
	conf_free(c);
}

static void
test_find(void)
{
	char err[1024] = "";
	const struct conf_domain *d;
	char *text = with_files(
	    "[domain zz.example]\n"
	    "[domain Mixed.Case.Example]\n"
	    "component_secret = x\n"
	    "[domain aa.example]\n"
	    "certificate = %s\n"
	    "key = %s\n");
	struct conf *c = load_text(text, NULL, err, sizeof(err));

	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL_FATAL(c->n_domains, 3);
	/* sorted, lower-cased */
	CU_ASSERT_STRING_EQUAL(c->domains[0].name, "aa.example");
	CU_ASSERT_STRING_EQUAL(c->domains[1].name, "mixed.case.example");
	CU_ASSERT_STRING_EQUAL(c->domains[2].name, "zz.example");

	d = conf_domain_find(c, "MIXED.case.EXAMPLE");
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_STRING_EQUAL(d->name, "mixed.case.example");
	CU_ASSERT_STRING_EQUAL(d->component_secret, "x");
	d = conf_domain_find(c, "AA.Example");
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_STRING_EQUAL(d->certificate, cert_path);
	CU_ASSERT_PTR_NOT_NULL(conf_domain_find(c, "zz.example"));
	CU_ASSERT_PTR_NULL(conf_domain_find(c, "example"));
	CU_ASSERT_PTR_NULL(conf_domain_find(c, "zz.example."));
	CU_ASSERT_PTR_NULL(conf_domain_find(c, "mm.example"));
	CU_ASSERT_PTR_NULL(conf_domain_find(c, ""));
	CU_ASSERT_PTR_NULL(conf_domain_find(c, NULL));
	CU_ASSERT_PTR_NULL(conf_domain_find(NULL, "aa.example"));
	CU_ASSERT_PTR_NULL(conf_host_find(c, "aa.example"));
	conf_free(c);
	free(text);
}

/* conf_remote_allowed() for the configuration text, on each domain. */
static struct conf *
acl_conf(const char *s2s)
{
	char err[1024] = "", text[1024];
	struct conf *c;

	snprintf(text, sizeof(text), "[s2s]\n%s[domain hosted.example]\n"
	    "[domain Other.Hosted]\n", s2s);
	c = load_text(text, NULL, err, sizeof(err));
	CU_ASSERT_STRING_EQUAL(err, "");
	return c;
}

static void
test_remote_allowed(void)
{
	struct conf *c;

	/* no lists: every valid domain; nothing invalid */
	c = acl_conf("");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(conf_remote_allowed(c, "example.org"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "a.b.example.org"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "localhost"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "hosted.example"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, ""));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "bad..example"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "example.org."));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "a b.example"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, NULL));
	CU_ASSERT_FALSE(conf_remote_allowed(NULL, "example.org"));
	conf_free(c);

	/* exact patterns cover only themselves; wildcards cover strict
	 * subdomains at any depth, never the apex or a look-alike */
	c = acl_conf("allow = example.org *.Friends.Example\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(conf_remote_allowed(c, "example.org"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "EXAMPLE.Org"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "a.example.org"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "example.org.evil"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "xexample.org"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "example"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "a.friends.example"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "x.y.friends.example"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "A.FRIENDS.example"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "friends.example"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "Friends.Example"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "xfriends.example"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "a.friends.example.net"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "other.net"));
	/* hosted domains are never subject to the lists */
	CU_ASSERT_TRUE(conf_remote_allowed(c, "hosted.example"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "OTHER.hosted"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "sub.hosted.example"));
	conf_free(c);

	/* deny wins over allow */
	c = acl_conf("allow = *.example.net bad.example.org\n"
	    "deny = evil.example.net, *.evil.example.net\n"
	    "deny = bad.example.org\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(conf_remote_allowed(c, "good.example.net"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "a.good.example.net"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "evil.example.net"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "Evil.Example.Net"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "a.evil.example.net"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "notevil.example.net"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "bad.example.org"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "example.net"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "example.org"));
	conf_free(c);

	/* an empty allow list: everything not denied */
	c = acl_conf("deny = spam.example *.spam.example\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_FALSE(conf_remote_allowed(c, "spam.example"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "x.SPAM.example"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "ham.example"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "spam.example.org"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "example"));
	conf_free(c);

	/* "*" matches everything */
	c = acl_conf("allow = *\ndeny = blocked.example\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(conf_remote_allowed(c, "anything.example"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "localhost"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "blocked.example"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "a.blocked.example"));
	conf_free(c);

	/* deny = *: no remote domain at all, yet hosted domains still talk,
	 * even when denied by name */
	c = acl_conf("allow = friend.example\n"
	    "deny = * hosted.example\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_FALSE(conf_remote_allowed(c, "friend.example"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "example.org"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "hosted.example"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "Hosted.Example"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "other.hosted"));
	conf_free(c);

	/* an allow list that leaves the hosted domains out */
	c = acl_conf("allow = friend.example\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(conf_remote_allowed(c, "friend.example"));
	CU_ASSERT_FALSE(conf_remote_allowed(c, "stranger.example"));
	CU_ASSERT_TRUE(conf_remote_allowed(c, "hosted.example"));
	conf_free(c);
}

/* A BOM, CRLF line ends, ':' instead of '=' and no final newline. */
static void
test_file_syntax(void)
{
	char err[1024] = "";
	struct conf *c = load_text("\xEF\xBB\xBF[server]\r\nworkers: 3\r\n"
	    "[domain example.org]", NULL, err, sizeof(err));

	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->workers, 3);
	CU_ASSERT_EQUAL(c->n_domains, 1);
	conf_free(c);
}

static void
test_tls_required_ok(void)
{
	char err[1024] = "";
	char *text = with_files(
	    "[s2s]\ntls = required\n"
	    "[domain a.example]\ncertificate = %s\nkey = %s\n");
	char *text2 = with_files(
	    "[s2s]\ntls = required\n"
	    "[tls]\ncertificate = %s\nkey = %s\n"
	    "[domain a.example]\n[domain b.example]\n");
	struct conf *c = load_text(text, NULL, err, sizeof(err));

	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL(c);
	CU_ASSERT_EQUAL(c != NULL ? c->tls : TLS_MODE_OFF, TLS_MODE_REQUIRED);
	conf_free(c);
	c = load_text(text2, NULL, err, sizeof(err));
	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL(c);
	conf_free(c);
	free(text);
	free(text2);
}

static void
test_tls_mode_name(void)
{
	CU_ASSERT_STRING_EQUAL(conf_tls_mode_name(TLS_MODE_OFF), "off");
	CU_ASSERT_STRING_EQUAL(conf_tls_mode_name(TLS_MODE_OPTIONAL),
	    "optional");
	CU_ASSERT_STRING_EQUAL(conf_tls_mode_name(TLS_MODE_REQUIRED),
	    "required");
}

/* ---- errors -------------------------------------------------------------- */

static void
test_error_sections(void)
{
	expect_error("[domain example.org]\n[bogus]\n", 2,
	    "[bogus]: unknown section");
	expect_error("[domain example.org]\n\n[Server]\nworkers = 2\n", 3,
	    "[Server]: unknown section");
	expect_error("workers = 2\n[domain example.org]\n", 1,
	    "workers: key outside any [section]");
	expect_error("[domain example.org]\n[server\n", 2,
	    "missing ']' in section header");
	expect_error("[domain example.org]\n[server] x\n", 2,
	    "text after ']' in section header");
	expect_error("[server]\nworkers = 2\n  [domain example.org]\n", 3,
	    "a section header must not be indented");
	/* comments after a header are fine */
	expect_error("[server] ; comment\nworkers = 0\n", 2,
	    "[server] workers: invalid value \"0\": expected a number from "
	    "1 to 256");
}

static void
test_error_domains(void)
{
	expect_error("[server]\nworkers = 2\n", 0,
	    "no [domain NAME] section: dialbackd must host at least one "
	    "domain");
	expect_error("", 0, "no [domain NAME] section: dialbackd must host "
	    "at least one domain");
	expect_error("[domain example.org]\n[domain bad..name]\n", 2,
	    "[domain bad..name]: invalid domain name");
	expect_error("[domain -=x]\n", 1, "[domain -=x]: invalid domain name");
	expect_error("[domain]\n", 1,
	    "[domain]: missing domain name: write [domain NAME]");
	expect_error("[domain Example.org]\ncomponent_secret = x\n\n"
	    "[domain example.ORG]\n", 4,
	    "[domain example.org]: domain given twice (first at line 1)");
	expect_error("[domain example.org]\nsecret = x\n", 2,
	    "[domain example.org] secret: unknown key");
	expect_error("[domain example.org]\ncomponent_secret = a\n"
	    "component_secret = b\n", 3,
	    "[domain example.org] component_secret: given twice (first at "
	    "line 2)");
}

static void
test_error_keys(void)
{
	expect_error("[domain example.org]\n[s2s]\nfoo = 1\n", 3,
	    "[s2s] foo: unknown key");
	expect_error("[domain example.org]\n[s2s]\n= 1\n", 3,
	    "[s2s]: missing key name before '='");
	expect_error("[domain example.org]\n[server]\nworkers\n", 3,
	    "syntax error: expected \"key = value\"");
	/* the first error in file order wins */
	expect_error("[server]\nworkers\nfoo = 1\n", 2,
	    "syntax error: expected \"key = value\"");
	expect_error("[domain example.org]\n[s2s]\ntls = optional\n"
	    "tls = required\n", 4,
	    "[s2s] tls: given twice (first at line 3)");
	expect_error("[domain example.org]\n[s2s]\ntls = optional\n"
	    "  idle_timeout = 5\n", 4,
	    "[s2s] tls: given twice (first at line 3); an indented line "
	    "continues the value of the line before it");
	expect_error("[domain example.org]\n[server]\nworkers = 257\n", 3,
	    "[server] workers: invalid value \"257\": expected a number from "
	    "1 to 256");
	expect_error("[domain example.org]\n[server]\nworkers = -1\n", 3,
	    "[server] workers: invalid value \"-1\": expected a number from "
	    "1 to 256");
	expect_error("[domain example.org]\n[s2s]\nmax_element_depth = 7\n", 3,
	    "[s2s] max_element_depth: invalid value \"7\": expected a number from "
	    "8 to 1000");
	expect_error("[domain example.org]\n[s2s]\nmax_element_children = 1000001\n", 3,
	    "[s2s] max_element_children: invalid value \"1000001\": expected a number from "
	    "100 to 1000000");
	expect_error("[domain example.org]\n[s2s]\ndialback_timeout = abc\n",
	    3, "[s2s] dialback_timeout: invalid duration \"abc\"");
	expect_error("[domain example.org]\n[s2s]\nconnect_timeout = 0\n", 3,
	    "[s2s] connect_timeout: 0 is out of range: expected 1s to "
	    "604800s");
	expect_error("[domain example.org]\n[s2s]\nidle_timeout = 8d\n", 3,
	    "[s2s] idle_timeout: 8d is out of range: expected 1s to "
	    "604800s");
	expect_error("[domain example.org]\n[server]\nstore_size = 10X\n", 3,
	    "[server] store_size: invalid size \"10X\"");
	expect_error("[domain example.org]\n[server]\nstore_size = 512K\n", 3,
	    "[server] store_size: 512K is too small: the minimum is 1M");
	expect_error("[domain example.org]\n[s2s]\nmax_stanza_size = 9999\n",
	    3, "[s2s] max_stanza_size: 9999 is too small: RFC 6120 section "
	    "13.12 requires at least 10000 bytes");
	expect_error("[domain example.org]\n[s2s]\nmax_stanza_size = 1G\n", 3,
	    "[s2s] max_stanza_size: 1G is too large: the maximum is 16M");
	expect_error("[domain example.org]\n[s2s]\ntls = maybe\n", 3,
	    "[s2s] tls: invalid TLS mode \"maybe\": expected required, "
	    "optional or off");
	expect_error("[domain example.org]\n[server]\nstore_sync = perhaps\n",
	    3, "[server] store_sync: invalid boolean \"perhaps\": expected "
	    "yes or no");
	expect_error("[domain example.org]\n[server]\nlog_level = loud\n", 3,
	    "[server] log_level: invalid log level \"loud\": expected error, "
	    "warning, notice, info or debug");
	expect_error("[domain example.org]\n[server]\nlog = var/log/x\n", 3,
	    "[server] log: invalid log \"var/log/x\": expected syslog, stderr "
	    "or an absolute file path");
	expect_error("[domain example.org]\n[server]\npidfile = run/x.pid\n",
	    3, "[server] pidfile: \"run/x.pid\" is not an absolute path");
	expect_error("[domain example.org]\n[server]\nstore =\n", 3,
	    "[server] store: empty value");
	expect_error("[domain example.org]\n[server]\nuser = a b\n", 3,
	    "[server] user: invalid name \"a b\"");
	expect_error("[domain example.org]\n[s2s]\nmax_connections = 0\n", 3,
	    "[s2s] max_connections: invalid value \"0\": expected a number "
	    "from 1 to 1000000");
	expect_error("[domain example.org]\n[s2s]\ndialback_timeout = 60\n"
	    "key_lifetime = 59\n", 4,
	    "[s2s] key_lifetime: 59s is shorter than dialback_timeout (60s)");
	expect_error("[domain example.org]\n[s2s]\ndialback_timeout = 10m\n",
	    3, "[s2s] key_lifetime: 300s is shorter than dialback_timeout "
	    "(600s)");
}

static void
test_error_listen(void)
{
	expect_error("[domain example.org]\n[s2s]\nlisten = 1.2.3.4:99999\n",
	    3, "[s2s] listen: invalid address \"1.2.3.4:99999\": expected "
	    "ADDRESS:PORT, [IPv6]:PORT or *:PORT");
	expect_error("[domain example.org]\n[s2s]\nlisten = ::1:5269\n", 3,
	    "[s2s] listen: invalid address \"::1:5269\": expected "
	    "ADDRESS:PORT, [IPv6]:PORT or *:PORT");
	expect_error("[domain example.org]\n[s2s]\nlisten = host.example\n",
	    3, "[s2s] listen: invalid address \"host.example\": expected "
	    "ADDRESS:PORT, [IPv6]:PORT or *:PORT");
	expect_error("[domain example.org]\n[s2s]\nlisten = 127.0.0.1\n"
	    "listen = 127.0.0.1:5269\n", 4,
	    "[s2s] listen: 127.0.0.1:5269 is already a listening address");
	expect_error("[domain example.org]\n[s2s]\nlisten = *:5269\n"
	    "[components]\nlisten = [::]:5269\n", 5,
	    "[components] listen: *:5269 is already a listening address");
	expect_error("[domain example.org]\n[s2s]\nlisten =\n", 3,
	    "[s2s] listen: empty value");
	expect_error("[domain example.org]\n[s2s]\nlisten = none\n", 3,
	    "[s2s] listen: the s2s listener cannot be turned off");
	expect_error("[domain example.org]\n[components]\nlisten = none\n"
	    "listen = 127.0.0.1\n", 4,
	    "[components] listen: \"none\" cannot be combined with addresses");
	/* the default s2s address is taken by components */
	expect_error("[domain example.org]\n[components]\nlisten = *:5269\n",
	    0, "[s2s] listen: *:5269 is already a listening address");
}

static void
test_error_acl(void)
{
	expect_error("[domain example.org]\n[s2s]\nallow = *example.org\n",
	    3, "[s2s] allow: invalid pattern \"*example.org\": '*' may only "
	    "stand alone or begin the pattern as \"*.\"");
	expect_error("[domain example.org]\n[s2s]\nallow = a.*.example\n", 3,
	    "[s2s] allow: invalid pattern \"a.*.example\": '*' may only "
	    "stand alone or begin the pattern as \"*.\"");
	expect_error("[domain example.org]\n[s2s]\ndeny = *.*.example\n", 3,
	    "[s2s] deny: invalid pattern \"*.*.example\": '*' may only "
	    "stand alone or begin the pattern as \"*.\"");
	expect_error("[domain example.org]\n[s2s]\ndeny = **\n", 3,
	    "[s2s] deny: invalid pattern \"**\": '*' may only stand alone "
	    "or begin the pattern as \"*.\"");
	expect_error("[domain example.org]\n[s2s]\nallow = Example.*\n", 3,
	    "[s2s] allow: invalid pattern \"Example.*\": '*' may only "
	    "stand alone or begin the pattern as \"*.\"");
	expect_error("[domain example.org]\n[s2s]\nallow = *.\n", 3,
	    "[s2s] allow: invalid pattern \"*.\": no domain after \"*.\"");
	expect_error("[domain example.org]\n[s2s]\nallow = *.Bad..Example\n",
	    3, "[s2s] allow: invalid pattern \"*.Bad..Example\": "
	    "\"Bad..Example\" is not a valid domain name");
	expect_error("[domain example.org]\n[s2s]\nallow = *..example\n", 3,
	    "[s2s] allow: invalid pattern \"*..example\": \".example\" is "
	    "not a valid domain name");
	expect_error("[domain example.org]\n[s2s]\ndeny = bad..example\n", 3,
	    "[s2s] deny: invalid pattern \"bad..example\": not a valid "
	    "domain name");
	expect_error("[domain example.org]\n[s2s]\ndeny = example.org.\n", 3,
	    "[s2s] deny: invalid pattern \"example.org.\": not a valid "
	    "domain name");
	expect_error("[domain example.org]\n[s2s]\ndeny = .example.org\n", 3,
	    "[s2s] deny: invalid pattern \".example.org\": not a valid "
	    "domain name");
	expect_error("[domain example.org]\n[s2s]\nallow = 192.0.2.1:5269\n",
	    3, "[s2s] allow: invalid pattern \"192.0.2.1:5269\": not a "
	    "valid domain name");
	/* the bad pattern among good ones, on a repeated key */
	expect_error("[domain example.org]\n[s2s]\nallow = a.example\n"
	    "allow = b.example, c!.example\n", 4,
	    "[s2s] allow: invalid pattern \"c!.example\": not a valid "
	    "domain name");
	/* and on a continuation line */
	expect_error("[domain example.org]\n[s2s]\ndeny = a.example\n"
	    "  b.example *x\n", 4,
	    "[s2s] deny: invalid pattern \"*x\": '*' may only stand alone "
	    "or begin the pattern as \"*.\"");
	/* only in [s2s] */
	expect_error("[domain example.org]\n[components]\nallow = a.example\n",
	    3, "[components] allow: unknown key");
	expect_error("[domain example.org]\ndeny = a.example\n", 2,
	    "[domain example.org] deny: unknown key");
}

static void
test_error_files(void)
{
	char *text;

	expect_error("[domain example.org]\n[tls]\n"
	    "certificate = /nonexistent/cert.pem\n", 3,
	    "[tls] certificate: cannot read \"/nonexistent/cert.pem\": No "
	    "such file or directory");
	expect_error("[domain example.org]\n[tls]\ncertificate = /\n", 3,
	    "[tls] certificate: \"/\" is not a regular file");
	expect_error("[domain example.org]\n[tls]\ncertificate = cert.pem\n",
	    3, "[tls] certificate: \"cert.pem\" is not an absolute path");
	expect_error("[domain example.org]\nkey = /nonexistent/key.pem\n", 2,
	    "[domain example.org] key: cannot read \"/nonexistent/key.pem\": "
	    "No such file or directory");

	/* key without certificate, and the reverse: reported at the key */
	text = with_files("[domain example.org]\n[tls]\n\n\nkey = %s\n");
	expect_error(text, 5, "[tls] key: given without certificate");
	free(text);
	text = with_files("[tls]\ncertificate = %s\n[domain example.org]\n");
	expect_error(text, 2, "[tls] certificate: given without key");
	free(text);
	text = with_files("[domain a.example]\n[domain b.example]\n"
	    "component_secret = x\n"
	    "certificate = %s\n");
	expect_error(text, 4, "[domain b.example] certificate: given "
	    "without key");
	free(text);
	/* with_files() puts the certificate at the first %s: any readable
	 * file will do as a key here */
	text = with_files("[domain a.example]\nkey = %s\n");
	expect_error(text, 2, "[domain a.example] key: given without "
	    "certificate");
	free(text);

	/* tls = required: every domain needs a certificate somewhere */
	expect_error("[s2s]\ntls = required\n[domain example.org]\n", 3,
	    "[domain example.org] certificate: [s2s] tls = required, but "
	    "neither this domain nor [tls] has a certificate");
	text = with_files("[s2s]\ntls = required\n"
	    "[domain a.example]\ncertificate = %s\nkey = %s\n"
	    "[domain b.example]\n");
	expect_error(text, 6, "[domain b.example] certificate: [s2s] tls = "
	    "required, but neither this domain nor [tls] has a certificate");
	free(text);
}

static void
test_error_hosts(void)
{
	expect_error("[domain example.org]\n[hosts]\nbad..example = x\n", 3,
	    "[hosts] bad..example: invalid domain name");
	expect_error("[domain example.org]\n[hosts]\na.example = x:0\n", 3,
	    "[hosts] a.example: invalid host \"x:0\": expected HOST, "
	    "HOST:PORT or [IPv6]:PORT");
	expect_error("[domain example.org]\n[hosts]\na.example = a b\n", 3,
	    "[hosts] a.example: invalid host \"a b\"");
	expect_error("[domain example.org]\n[hosts]\na.example =\n", 3,
	    "[hosts] a.example: empty value");
	expect_error("[domain example.org]\n[hosts]\nA.example = x\n"
	    "a.EXAMPLE = y\n", 4,
	    "[hosts] a.EXAMPLE: given twice (first at line 3)");
}

static void
test_error_file_level(void)
{
	char err[1024], want[1024], line[400], text[600];
	struct conf *c;
	FILE *f;
	char *path;
	int limit;

	c = conf_load(DATADIR "/does-not-exist.conf", err, sizeof(err));
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_STRING_EQUAL(err, DATADIR "/does-not-exist.conf: cannot "
	    "open: No such file or directory");

	/* inih's line buffer is fixed: longer lines are refused, not split */
	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	memcpy(line, "user = ", 7);
	snprintf(text, sizeof(text), "[domain example.org]\n[server]\n%s\n",
	    line);
	c = load_text(text, &path, err, sizeof(err));
	CU_ASSERT_PTR_NULL(c);
	snprintf(want, sizeof(want), "%s:3: line too long (the limit is ",
	    path);
	CU_ASSERT_NSTRING_EQUAL(err, want, strlen(want));
	free(path);
	/* exactly at the limit inih reported is fine, one more is not */
	limit = strlen(err) > strlen(want) ? atoi(err + strlen(want)) : 0;
	CU_ASSERT_FATAL(limit > 20 && (size_t)limit < sizeof(line));
	line[limit] = '\0';
	snprintf(text, sizeof(text), "[domain example.org]\n[server]\n%s\n",
	    line);
	c = load_text(text, NULL, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL(c);
	CU_ASSERT_EQUAL(c != NULL ? strlen(c->user) : 0, (size_t)limit - 7);
	conf_free(c);
	line[limit] = 'a';
	line[limit + 1] = '\0';
	snprintf(text, sizeof(text), "[domain example.org]\n[server]\n%s\n",
	    line);
	c = load_text(text, NULL, err, sizeof(err));
	CU_ASSERT_PTR_NULL(c);
	conf_free(c);

	/* a NUL byte would hide the rest of the line from inih */
	path = test_write_file(test_tmpdir(), "nul.conf", "");
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite("[domain example.org]\nx\0y = 1\n", 1, 29, f),
	    29);
	CU_ASSERT_EQUAL(fclose(f), 0);
	c = conf_load(path, err, sizeof(err));
	CU_ASSERT_PTR_NULL(c);
	snprintf(want, sizeof(want), "%s:2: NUL byte in line", path);
	CU_ASSERT_STRING_EQUAL(err, want);
	free(path);

	/* a tiny error buffer truncates, and none at all is allowed */
	path = write_conf("[bogus]\n");
	c = conf_load(path, err, 5);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(strlen(err), 4);
	c = conf_load(path, NULL, 0);
	CU_ASSERT_PTR_NULL(c);
	free(path);
}

/* ---- shipped files ------------------------------------------------------ */

static void
test_example_file(void)
{
	char err[1024] = "";
	struct conf *c = conf_load(TOP_SRCDIR "/etc/dialbackd.conf.example",
	    err, sizeof(err));

	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NOT_NULL(conf_domain_find(c, "example.org"));
	CU_ASSERT_EQUAL(c->tls, TLS_MODE_OPTIONAL);
	conf_free(c);
}

/* conf_print() of full.conf against full.conf.ok, then a round trip: the
 * printed text loads and prints the same again. */
static void
test_golden(void)
{
	char err[1024] = "";
	char *tmpl, *text, *path, *out, *norm, *want, *path2, *out2;
	struct conf *c, *c2;

	tmpl = read_file(DATADIR "/full.conf");
	want = read_file(DATADIR "/full.conf.ok");
	text = replace_all(tmpl, "@DATA@", DATADIR);
	c = load_text(text, &path, err, sizeof(err));
	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	out = print_to_string(c);
	norm = replace_all(out, DATADIR, "@DATA@");
	if (strcmp(norm, want) != 0)
		fprintf(stderr, "\nconf_print() differs from full.conf.ok:\n"
		    "%s", norm);
	CU_ASSERT_STRING_EQUAL(norm, want);

	path2 = write_conf(out);
	c2 = conf_load(path2, err, sizeof(err));
	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
	out2 = print_to_string(c2);
	CU_ASSERT_STRING_EQUAL(out, out2);
	/* the secret itself never shows */
	CU_ASSERT_PTR_NULL(strstr(out, "not-a-real-secret"));

	conf_free(c);
	conf_free(c2);
	free(tmpl);
	free(want);
	free(text);
	free(path);
	free(out);
	free(norm);
	free(path2);
	free(out2);
}

/* The defaults also print and read back. */
static void
test_print_defaults(void)
{
	char err[1024] = "";
	char *out, *out2, *path;
	struct conf *c, *c2;

	c = load_text("[domain example.org]\n", NULL, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	out = print_to_string(c);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "[server]\nworkers = 1\nuser =\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nstore_size = 64M\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nmax_stanza_size = 256K\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nlisten = *:5269\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nlisten = 127.0.0.1:5347\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nkey_lifetime = 300s\nmax_stanza_size_unauth = 10000\n"
	    "max_pending_dialback = 16\nmax_element_depth = 64\nmax_element_attributes = 64\n"
	    "max_element_children = 10000\nmax_streams_per_ip = 64\nmax_new_per_ip = 50\n"
	    "output_buffer_max = 4M\nallow =\n"
	    "deny =\n\n[components]\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\ncomponent_secret =\n"));
	path = write_conf(out);
	c2 = conf_load(path, err, sizeof(err));
	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
	out2 = print_to_string(c2);
	CU_ASSERT_STRING_EQUAL(out, out2);
	conf_free(c);
	conf_free(c2);
	free(out);
	free(out2);
	free(path);
}

int
test_register(void)
{
	CU_pSuite s;

	if ((s = CU_add_suite("conf", suite_init, suite_clean)) == NULL)
		return CU_get_error();
	TEST_ADD(s, test_minimal_defaults);
	TEST_ADD(s, test_every_key);
	TEST_ADD(s, test_empty_optional);
	TEST_ADD(s, test_listen_lists);
	TEST_ADD(s, test_acl_lists);
	TEST_ADD(s, test_components_none);
	TEST_ADD(s, test_hosts);
	TEST_ADD(s, test_find);
	TEST_ADD(s, test_remote_allowed);
	TEST_ADD(s, test_file_syntax);
	TEST_ADD(s, test_tls_required_ok);
	TEST_ADD(s, test_tls_mode_name);
	TEST_ADD(s, test_error_sections);
	TEST_ADD(s, test_error_domains);
	TEST_ADD(s, test_error_keys);
	TEST_ADD(s, test_error_listen);
	TEST_ADD(s, test_error_acl);
	TEST_ADD(s, test_error_files);
	TEST_ADD(s, test_error_hosts);
	TEST_ADD(s, test_error_file_level);
	TEST_ADD(s, test_example_file);
	TEST_ADD(s, test_golden);
	TEST_ADD(s, test_print_defaults);
	return CUE_SUCCESS;
}
