/* The service manager's readiness protocol (sd_notify(3)), written by hand: one datagram to the
 * AF_UNIX socket named by $NOTIFY_SOCKET, when systemd (Type=notify) or another manager set it.
 * Nothing is linked in, and without the variable nothing happens. */
#ifndef RH_NOTIFY_H
#define RH_NOTIFY_H

/* Sends <state> ("READY=1", "STOPPING=1", "STATUS=...", several separated by newlines). Returns 0,
 * or -1 with errno (no $NOTIFY_SOCKET: ENOENT, which callers may ignore). Main thread. */
int rh_notify(const char *state);

#endif
