/* master.h - the supervising process: binds listeners, drops privileges,
 * forks and respawns workers, handles signals. It never parses a stanza. */
#ifndef DIALBACKD_MASTER_H
#define DIALBACKD_MASTER_H

#include <stdbool.h>

#include "conf.h"

/* Runs until SIGTERM/SIGINT; takes ownership of conf. Returns the exit
 * status for main(). */
int master_run(struct conf *conf, const char *conf_path);

#endif
