/* notify.h - the systemd notify protocol (sd_notify), spoken directly: a
 * datagram to $NOTIFY_SOCKET. A no-op when not run by systemd. */
#ifndef DIALBACKD_NOTIFY_H
#define DIALBACKD_NOTIFY_H

/* Sends state, e.g. "READY=1\nSTATUS=2 workers". 0 sent or not needed. */
int notify_send(const char *state);

#endif
