/*
 * Resident mode (issue #19, man page RESIDENT MODE): both sides kept by the
 * front's program.
 *
 *  - The front's side. With QMAIL_POPUP_RESIDENT=PATH, the front connects
 *    to the resident's unix socket instead of starting a runtime, checks
 *    that the peer runs as the runtime's account (SO_PEERCRED), and hands
 *    it the connection: one netstring `fds=N,N,...` carrying those
 *    descriptors (SCM_RIGHTS), then the usual introduction. From then on
 *    the socket is the control socket of doc/control-protocol.md.
 *
 *  - The resident: `qmail-popup --resident PATH [WORKERS]`, started once
 *    by a supervisor as root. It makes the socket (mode 0600 in a
 *    root-owned directory: only root, the fronts, may connect), starts
 *    WORKERS runtimes (`qmail-popup-runtime --resident FD RETIRE RESTART LIMIT MEMORY RESIDENT`)
 *    as the runtime's account, each serving many sessions, and starts a
 *    new one for each that ends.
 */

#define _GNU_SOURCE
#include "resident.h"
#include "confine.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* The descriptors a session may use: 0, 1, 2, 5 and sslserver's three. */
#define HANDED_LIMIT 7
/* Sessions a worker serves before it is replaced (Dovecot's restart_request_count), and at once. */
#define DEFAULT_RESTART 10000
#define DEFAULT_SESSION_LIMIT 5000
#define MAX_WORKERS 256
/*
 * A worker's resident set, in MiB, past which it retires (QMAIL_POPUP_RESIDENT_MEMORY);
 * at twice that the resident kills it. A worker measured 40 MiB at its
 * start, 54 after 200 sessions, and 14 to 26 KiB more for each idle
 * session it holds: DEFAULT_SESSION_LIMIT of them fit in about 180 MiB.
 */
#define DEFAULT_MEMORY_MIB 256
/* Workers alive, retired ones still ending their sessions included: each is watched for the hard bound. */
#define MAX_RUNNING (4 * MAX_WORKERS)

static void resident_say(const char *first, const char *second, const char *third)
{
  char text[512] = "qmail-popup: ";
  size_t n = strlen(text);
  const char *parts[] = { first, second, third };
  for (int i = 0; i < 3; i++)
    for (const char *p = parts[i]; p && *p && n < sizeof text - 2; p++) text[n++] = *p;
  text[n++] = '\n';
  while (write(2, text, n) == -1 && errno == EINTR) {}
}

/* A decimal number, 0 to 2^31-1; -1 if anything else. */
static long resident_number(const char *s, size_t n)
{
  return confine_decimal(s, n, 0x7fffffffL);
}

/* --- the front's side ------------------------------------------------------ */

/* The uid of the process at the other end of a unix socket (for a listening one, of the last to call listen(2)); -1 if unknown. */
static long resident_peer_uid(int fd)
{
#ifdef __linux__
  struct ucred peer;
  socklen_t size = sizeof peer;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) == -1 || size != sizeof peer) return -1;
  return (long)peer.uid;
#else
  uid_t uid;
  gid_t gid;
  if (getpeereid(fd, &uid, &gid) == -1) return -1;
  return (long)uid;
#endif
}

static int resident_named_descriptor(const char *name)
{
  const char *v = getenv(name);
  long fd = v ? resident_number(v, strlen(v)) : -1;
  if (fd < 0 || fd >= 1024 || fcntl((int)fd, F_GETFD) == -1) return -1;
  return (int)fd;
}

int resident_connect(const char *path)
{
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  uid_t uid;
  gid_t gid;
  if (strlen(path) >= sizeof address.sun_path) { resident_say("resident ", path, ": the path is too long"); return -1; }
  /* The account the resident's workers run as (src/front/confine.c). */
  confine_ids(&uid, &gid);
  strcpy(address.sun_path, path);
  /* Non-blocking: a resident whose queue is full is not waited for. */
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd == -1) { resident_say("resident ", path, ": unable to make a socket"); return -1; }
  if (connect(fd, (struct sockaddr *)&address, sizeof address) == -1) {
    resident_say("resident ", path, errno == EAGAIN ? ": full" : errno == ENOENT || errno == ECONNREFUSED ? ": not running" : ": unable to connect");
    close(fd);
    return -1;
  }
  if (resident_peer_uid(fd) != (long)uid) {
    resident_say("resident ", path, ": the process listening there is not the runtime's account: not used");
    close(fd);
    return -1;
  }
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

int resident_hand_over(int control)
{
  int handed[HANDED_LIMIT], count = 0;
  int candidates[HANDED_LIMIT] = { 0, 1, 2, 5, resident_named_descriptor("SSLCTLFD"), resident_named_descriptor("SSLREADFD"), resident_named_descriptor("SSLWRITEFD") };
  char list[128] = "fds=";
  for (int i = 0; i < HANDED_LIMIT; i++) {
    int fd = candidates[i], seen = 0;
    if (fd < 0 || fcntl(fd, F_GETFD) == -1) continue;
    for (int j = 0; j < count; j++) seen |= handed[j] == fd;
    if (seen) continue;
    char text[16];
    snprintf(text, sizeof text, "%s%d", count ? "," : "", fd);
    strcat(list, text);
    handed[count++] = fd;
  }
  char message[160];
  int n = snprintf(message, sizeof message, "%zu:%s,", strlen(list), list);
  union { struct cmsghdr header; char space[CMSG_SPACE(sizeof handed)]; } rights;
  memset(&rights, 0, sizeof rights);
  struct iovec bytes = { .iov_base = message, .iov_len = (size_t)n };
  struct msghdr m = { .msg_iov = &bytes, .msg_iovlen = 1, .msg_control = rights.space, .msg_controllen = CMSG_SPACE(count * sizeof(int)) };
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(count * sizeof(int));
  memcpy(CMSG_DATA(c), handed, count * sizeof(int));
  ssize_t sent;
  while ((sent = sendmsg(control, &m, MSG_NOSIGNAL)) == -1 && errno == EINTR) {}
  if (sent != n) return -1;
  return 0;
}

/* A worker at its session limit answers a front with this alone, and closes (src/resident/worker.ts). */
static const char resident_full[] = "5:full=,";

int resident_taken(int control, const char *path, long long quiet_ms)
{
  char first[sizeof resident_full - 1];
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  long long deadline = now.tv_sec * 1000LL + now.tv_nsec / 1000000 + quiet_ms;
  for (;;) {
    /* Looked at, not taken: a runtime's first word is listen_to()'s to read. */
    ssize_t n = recv(control, first, sizeof first, MSG_PEEK);
    if (n == 0 || (n == -1 && errno == ECONNRESET)) {
      /* A worker writes its version before a byte to the client (src/serve.ts): it wrote nothing. */
      resident_say("resident ", path, ": the connection was ended without a word: not used");
      return 0;
    }
    if (n > 0 && memcmp(first, resident_full, (size_t)n) != 0) return 1;
    if (n == (ssize_t)sizeof first) {
      recv(control, first, sizeof first, 0);
      resident_say("resident ", path, ": full");
      return 0;
    }
    if (n == -1 && errno != EINTR) return 1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long left = deadline - (now.tv_sec * 1000LL + now.tv_nsec / 1000000);
    if (left <= 0) return -1;
    struct pollfd more = { .fd = control, .events = POLLIN };
    /* Part of a word (readable all along): a moment for the rest. */
    if (n > 0) poll(NULL, 0, 1);
    else poll(&more, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
  }
}

/* --- the resident ------------------------------------------------------------ */

static volatile sig_atomic_t resident_stopping;
static void resident_stop(int signal_number) { (void)signal_number; resident_stopping = 1; }

/* The directory of path: root's, and nobody else may write to it. */
static int resident_directory_safe(const char *path)
{
  char directory[sizeof ((struct sockaddr_un *)0)->sun_path];
  strcpy(directory, path);
  char *slash = strrchr(directory, '/');
  if (!slash || slash == directory) return -1;
  *slash = 0;
  struct stat s;
  if (lstat(directory, &s) == -1 || !S_ISDIR(s.st_mode) || s.st_uid != 0 || (s.st_mode & 022)) return -1;
  return 0;
}

/*
 * In the worker's process: the runtime's account, no way back, the runtime
 * in resident mode. The worker closes `retiring` when it stops accepting
 * (after RESTART sessions, or past MEMORY MiB), so that its replacement
 * starts while it ends the sessions it has.
 */
static void resident_exec_worker(const char *runtime, int listening, int retiring, const char *restart, const char *limit, const char *memory)
{
  int fd = fcntl(listening, F_DUPFD, 3), retire = fcntl(retiring, F_DUPFD, 3);
  if (fd == -1 || retire == -1) _exit(111);
  for (int number = 1; number < NSIG; number++)
    if (number != SIGKILL && number != SIGSTOP) signal(number, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  struct rlimit core = { 0, 0 }, files;
  setrlimit(RLIMIT_CORE, &core);
  /* Each session holds up to eight descriptors: the worker may have all the administrator allows. */
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  /*
   * As a runtime of one connection is (src/front/confine.c): the account,
   * no capabilities, no_new_privs, Landlock, seccomp; but it listens (as
   * the account: what a front's SO_PEERCRED reads) and may accept.
   */
  confine_worker(runtime, fd);
  char text[16], retire_text[16], parent_text[16];
  snprintf(text, sizeof text, "%d", fd);
  snprintf(retire_text, sizeof retire_text, "%d", retire);
  /* The exec as the account clears the parent-death signal: the worker arms it again, and checks that we are still its parent. */
  snprintf(parent_text, sizeof parent_text, "%d", (int)getppid());
  char *argv[] = { "qmail-popup-runtime", "--resident", text, retire_text, (char *)restart, (char *)limit, (char *)memory, parent_text, NULL };
  /*
   * Nothing of ours, but one word to its allocator: keep what it freed
   * rather than hand it back to the kernel and fault it in again for the
   * next session. Measured on a greeting+QUIT session: 7.2 page faults and
   * 1.1 ms of the worker's CPU with, 0.6 and 0.84 ms without, for 6 to 8
   * MiB more resident (QMAIL_POPUP_RESIDENT_MEMORY bounds it).
   */
  char *envp[] = { "MIMALLOC_PURGE_DELAY=-1", NULL };
  execve(runtime, argv, envp);
  resident_say("resident: unable to run ", runtime, "");
  _exit(111);
}

static long resident_positive(const char *text, long fallback, long maximum)
{
  long n = text && *text ? resident_number(text, strlen(text)) : fallback;
  if (n <= 0) n = fallback;
  return n > maximum ? maximum : n;
}

static void resident_child_ended(int signal_number) { (void)signal_number; }

/* A worker's resident set in MiB (/proc/PID/statm, as root reads it); -1 if unknown. */
static long resident_memory_mib(pid_t pid)
{
  char path[40], text[128];
  snprintf(path, sizeof path, "/proc/%ld/statm", (long)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) return -1;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return -1;
  text[n] = 0;
  char *space = strchr(text, ' ');
  if (!space) return -1;
  long pages = strtol(space + 1, NULL, 10);
  return pages * (sysconf(_SC_PAGESIZE) / 1024) / 1024;
}

static void resident_watch(pid_t *running, pid_t pid)
{
  for (long i = 0; i < MAX_RUNNING; i++)
    if (running[i] == 0) { running[i] = pid; return; }
}

int resident_main(int argc, char **argv, const char *runtime)
{
#ifndef __linux__
  /* The worker waits with epoll(7): resident mode is Linux's for now. Fronts fall back as for an absent resident. */
  (void)argc; (void)argv; (void)runtime;
  resident_say("resident: resident mode runs on Linux only (its workers use epoll): not started", "", "");
  return 111;
#endif
  if (argc < 3 || argc > 4) { resident_say("usage: qmail-popup --resident PATH [WORKERS]", "", ""); return 100; }
  const char *path = argv[2];
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  long workers = resident_positive(argc == 4 ? argv[3] : NULL, cores > 0 ? cores : 1, MAX_WORKERS);
  char restart[24], limit[24], memory[24];
  snprintf(restart, sizeof restart, "%ld", resident_positive(getenv("QMAIL_POPUP_RESIDENT_RESTART"), DEFAULT_RESTART, 1000000000));
  snprintf(limit, sizeof limit, "%ld", resident_positive(getenv("QMAIL_POPUP_RESIDENT_SESSIONS"), DEFAULT_SESSION_LIMIT, 1000000));
  long memory_mib = resident_positive(getenv("QMAIL_POPUP_RESIDENT_MEMORY"), DEFAULT_MEMORY_MIB, 1L << 30);
  snprintf(memory, sizeof memory, "%ld", memory_mib);
  uid_t uid;
  gid_t gid;
  if (!runtime) { resident_say("resident: unable to find qmail-popup-runtime", "", ""); return 111; }
  if (getuid() != 0) { resident_say("resident: must be started as root: it makes a socket only root may reach", "", ""); return 111; }
  /* Refused here, once, rather than in every worker: no account's uid or gid may be 0. */
  confine_ids(&uid, &gid);
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof address.sun_path || path[0] != '/') { resident_say("resident: ", path, ": not an absolute path short enough for a socket"); return 111; }
  if (resident_directory_safe(path) != 0) { resident_say("resident: ", path, ": its directory must exist, be root's and writable by nobody else"); return 111; }
  strcpy(address.sun_path, path);
  struct stat old;
  if (lstat(path, &old) == 0 && S_ISSOCK(old.st_mode)) unlink(path);
  int listening = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  mode_t mask = umask(077);
  if (listening == -1 || bind(listening, (struct sockaddr *)&address, sizeof address) == -1) {
    resident_say("resident: unable to bind ", path, errno == EADDRINUSE ? ": something else is there" : "");
    return 111;
  }
  umask(mask);
  /* Bound, not listening: each worker listens as the runtime's account (exec_worker). */
  if (chmod(path, 0600) == -1) { resident_say("resident: unable to chmod ", path, ""); return 111; }

  struct sigaction on_stop = { .sa_handler = resident_stop }, on_child = { .sa_handler = resident_child_ended };
  sigemptyset(&on_stop.sa_mask);
  sigemptyset(&on_child.sa_mask);
  sigaction(SIGTERM, &on_stop, NULL);
  sigaction(SIGINT, &on_stop, NULL);
  /* No SA_RESTART: a worker's end interrupts the poll below. */
  sigaction(SIGCHLD, &on_child, NULL);
  signal(SIGPIPE, SIG_IGN);
  /* Each slot: the worker serving it, and the read end of the pipe it closes when it retires. */
  pid_t pids[MAX_WORKERS] = { 0 };
  struct pollfd retiring[MAX_WORKERS];
  time_t started[MAX_WORKERS] = { 0 };
  /* Every worker alive (negative: killed, not yet reaped). */
  static pid_t running[MAX_RUNNING];
  for (long i = 0; i < workers; i++) retiring[i] = (struct pollfd){ .fd = -1, .events = POLLIN };
  while (!resident_stopping) {
    for (long i = 0; i < workers && !resident_stopping; i++) {
      if (retiring[i].fd != -1) continue;
      /* A worker that ended within a second of its start is not replaced at once: no spinning. */
      if (started[i] && time(NULL) - started[i] < 1) sleep(1);
      int retire[2];
      if (pipe2(retire, O_CLOEXEC) == -1) { resident_say("resident: unable to make a pipe: ", error_text(errno), ""); sleep(1); continue; }
      pid_t pid = fork();
      if (pid == 0) resident_exec_worker(runtime, listening, retire[1], restart, limit, memory);
      close(retire[1]);
      if (pid > 0) { pids[i] = pid; started[i] = time(NULL); retiring[i].fd = retire[0]; resident_watch(running, pid); }
      else { close(retire[0]); resident_say("resident: unable to fork: ", error_text(errno), ""); sleep(1); }
    }
    poll(retiring, (nfds_t)workers, 1000);
    /* A runaway ends only its own sessions: past twice the bound, killed (its fronts answer -ERR [SYS/TEMP]). */
    for (long i = 0; i < MAX_RUNNING; i++) {
      long used = running[i] > 0 ? resident_memory_mib(running[i]) : -1;
      if (used > 2 * memory_mib) {
        char text[96];
        snprintf(text, sizeof text, "%ld: %ld MiB, past twice QMAIL_POPUP_RESIDENT_MEMORY=%ld: killed", (long)running[i], used, memory_mib);
        resident_say("resident: a worker ", text, "");
        kill(running[i], SIGKILL);
        running[i] = -running[i];
      }
    }
    /* A retired worker (its pipe closed) is replaced now; it ends its sessions, then itself. */
    for (long i = 0; i < workers; i++)
      if (retiring[i].fd != -1 && (retiring[i].revents & (POLLHUP | POLLIN))) {
        close(retiring[i].fd);
        retiring[i].fd = -1;
        pids[i] = 0;
      }
    int status;
    for (pid_t ended; (ended = waitpid(-1, &status, WNOHANG)) > 0;) {
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char text[24];
        snprintf(text, sizeof text, "%d", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        resident_say("resident: a worker ", WIFSIGNALED(status) ? "was killed by signal " : "ended with status ", text);
      }
      for (long i = 0; i < workers; i++)
        if (pids[i] == ended && retiring[i].fd != -1) { close(retiring[i].fd); retiring[i].fd = -1; pids[i] = 0; }
      for (long i = 0; i < MAX_RUNNING; i++)
        if (running[i] == ended || running[i] == -ended) running[i] = 0;
    }
  }
  unlink(path);
  for (long i = 0; i < workers; i++)
    if (pids[i] > 0) kill(pids[i], SIGTERM);
  /* Those still ending their sessions die with us (PR_SET_PDEATHSIG). */
  while (wait(NULL) > 0 || errno == EINTR) {}
  return 0;
}
