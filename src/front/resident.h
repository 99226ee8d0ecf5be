/* Resident mode (src/front/resident.c): the front's side and the resident itself. */
#ifndef QMAIL_POPUP_RESIDENT_H
#define QMAIL_POPUP_RESIDENT_H

/* Connects to the resident at path, a process of the runtime's account: the socket, or -1 (said why on fd 2). */
int resident_connect(const char *path);
/* Hands the resident this connection's descriptors (SCM_RIGHTS): 0, or -1. */
int resident_hand_over(int control);
/*
 * After the hand-over and the introduction: 1 if the resident took the
 * connection (its first word, left unread, is coming), 0 if it said it is
 * full or ended without a word (said why on fd 2: the connection is ours
 * again), -1 if it said nothing for quiet_ms.
 */
int resident_taken(int control, const char *path, long long quiet_ms);
/* qmail-popup --resident PATH [WORKERS]: never returns while it serves. */
int resident_main(int argc, char **argv, const char *runtime);

#endif
