/*
 * The runtime's confinement (src/front/confine.c): called in the forked
 * child, just before it executes the runtime. Every step either holds or
 * the child says why on fd 2 and exits 111: the runtime never starts
 * half-confined, and the front answers -ERR [SYS/TEMP].
 */
#ifndef QMAIL_POPUP_CONFINE_H
#define QMAIL_POPUP_CONFINE_H

#include <sys/types.h>

/* Confines this process before it executes runtime (its path); returns only if all held. */
void confine_runtime(const char *runtime);
/* The same for a resident's worker, which listens on listening (as the account) and may accept on it. */
void confine_worker(const char *runtime, int listening);
/* strerror(3), in glibc's words where musl's differ: the front's lines on fd 2 as they were. */
const char *error_text(int e);
/* A decimal number of n bytes (no sign, at most 10 digits), 0 to limit; -1 if anything else. */
long confine_decimal(const char *s, size_t n, long limit);
/* The runtime's account: QMAIL_POPUP_UID and QMAIL_POPUP_GID, qmailpopup, or 65534 (said on fd 2); never 0 (refused: exit 111). */
void confine_ids(uid_t *uid, gid_t *gid);

#endif
