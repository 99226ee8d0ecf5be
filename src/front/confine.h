/*
 * The runtime's confinement (src/front/confine.c): called in the forked
 * child, just before it executes the runtime. Every step either holds or
 * the child says why on fd 2 and exits 111: the runtime never starts
 * half-confined, and the front answers -ERR [SYS/TEMP].
 */
#ifndef QMAIL_POPUP_CONFINE_H
#define QMAIL_POPUP_CONFINE_H

/* Confines this process before it executes runtime (its path); returns only if all held. */
void confine_runtime(const char *runtime);

#endif
