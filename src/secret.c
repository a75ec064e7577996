/* secret.c - the dialback secret file. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"
#include "util.h"

#define SECRET_FILE_MAX 4096	/* a secret file larger than this is refused */

static int
create_secret(const char *path, char *err, size_t errlen)
{
	unsigned char raw[32];
	char hex[sizeof(raw) * 2 + 2];
	int fd;
	ssize_t w;

	if (util_random_bytes(raw, sizeof(raw)) == -1) {
		snprintf(err, errlen, "%s: cannot read random bytes: %s", path, strerror(errno));
		return -1;
	}
	util_hex(raw, sizeof(raw), hex);
	util_wipe(raw, sizeof(raw));
	strcat(hex, "\n");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
		util_wipe(hex, sizeof(hex));
		return -1;
	}
	w = write(fd, hex, strlen(hex));
	util_wipe(hex, sizeof(hex));
	if (w != (ssize_t)(sizeof(raw) * 2 + 1) || fsync(fd) == -1) {
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	if (close(fd) == -1) {
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

int
secret_load(const char *path, bool create, uid_t owner,
    char digest[DIALBACK_SECRET_HEX + 1], char *err, size_t errlen)
{
	char buf[SECRET_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t len;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1 && errno == ENOENT && create) {
		if (create_secret(path, err, errlen) == -1)
			return -1;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd == -1) {
		snprintf(err, errlen, "%s: cannot open secret file: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: secret file is not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: secret file must not be accessible by group or others (mode %03o, want 0600)",
		    path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if (owner != (uid_t)-1 && st.st_uid != owner) {
		snprintf(err, errlen, "%s: secret file is owned by uid %lu, not by the service user (uid %lu)",
		    path, (unsigned long)st.st_uid, (unsigned long)owner);
		goto out;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		goto out;
	}
	if (n > SECRET_FILE_MAX) {
		snprintf(err, errlen, "%s: secret file larger than %d bytes", path, SECRET_FILE_MAX);
		goto out;
	}
	len = (size_t)n;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	if (len < 16) {
		snprintf(err, errlen, "%s: secret is shorter than 16 characters", path);
		goto out;
	}
	if (dialback_secret_digest(buf, len, digest) == -1) {
		snprintf(err, errlen, "%s: cannot hash the secret", path);
		goto out;
	}
	rc = 0;
out:
	util_wipe(buf, sizeof(buf));
	close(fd);
	return rc;
}
