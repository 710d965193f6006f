/*
 * notify.h: the systemd readiness protocol (sd_notify), without libsystemd.
 *
 * When NOTIFY_SOCKET is set (systemd Type=notify), each call sends one
 * datagram such as "READY=1\nSTATUS=..." to that socket; otherwise it does
 * nothing. Failures are ignored: readiness reports must never stop serving.
 */
#ifndef TLSFRONT_NOTIFY_H
#define TLSFRONT_NOTIFY_H

/* Send one notification, printf-style. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CLOCK_MONOTONIC in microseconds, for "RELOADING=1\nMONOTONIC_USEC=%llu". */
unsigned long long notify_monotonic_usec(void);

#endif
