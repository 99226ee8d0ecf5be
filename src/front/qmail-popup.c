/*
 * qmail-popup: the front. tcpserver (or any launcher) runs this small
 * program per connection, as it ran the C qmail-popup. It does what a
 * JavaScript runtime cannot do for itself:
 *
 *  - start at all under `softlimit -m 2000000`: the runtime is started
 *    with its soft memory and process limits raised to the hard ones,
 *    while this process, and so the login program, keeps the limits the
 *    administrator set;
 *  - keep the environment and the arguments as bytes, and out of the
 *    runtime's reach: the runtime gets an empty environment and one
 *    argument; it reads our arguments and environment from the control
 *    socket (no BUN_*, NODE_*, LD_* or any other variable steers it);
 *  - start the login program with exactly our arguments, our environment
 *    (plus what the session learned: SSL_* after STLS), our descriptors
 *    and our limits, and report how it ended.
 *
 * The protocol (greeting, commands, STLS, SASL, replies, log lines) is the
 * runtime's: src/serve.ts. It sends this program, on the control socket,
 * the plan for the login: the credentials, the descriptors to use, the
 * variables to add, and a reply and a log line for each outcome
 * (src/core/outcome.ts). Messages both ways are netstrings holding
 * `key=value` (djb's netstrings: `LENGTH:BYTES,`).
 *
 * Descriptors: 0 and 1 are the network, 2 the operator's log, 5 the
 * authentication log when open; every descriptor we inherited passes to
 * the login program unchanged; ours are close-on-exec. fd 3 of the login
 * program is a pipe holding `name\0secret\0timestamp\0`.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include "confine.h"
#ifdef __linux__
#include <sys/prctl.h>
#endif
#ifdef __FreeBSD__
#include <sys/procctl.h>
#include <sys/sysctl.h>
#endif

#ifndef VERSION
#define VERSION "unknown"
#endif
/* What strings(1) finds, as in the runtime: "qmail-popup VERSION". */
__attribute__((used)) static const char IDENTITY[] = "qmail-popup " VERSION;
/* Next to this program: the runtime (a Bun binary, a Node SEA, or a script). */
#define RUNTIME_NAME "qmail-popup-runtime"
/* The most the runtime may say: credentials, SSL_* variables, replies, lines. */
#define MESSAGE_LIMIT (1024 * 1024)
/* Descriptors 0 to this one less are looked at, for the runtime's list and their flags. */
#define DESCRIPTOR_SCAN 1024
#define DEFAULT_TIMEOUT 1200

extern char **environ;

/* How our launcher left SIGCHLD: we need it at its default to wait, the login program gets it back. */
static struct sigaction launcher_sigchld;

/* The file status flags (O_NONBLOCK) of each descriptor we inherited, as we found them; -1 where none. */
static int inherited_flags[DESCRIPTOR_SCAN];

/*
 * Finds the descriptors we inherited (below DESCRIPTOR_SCAN) and their
 * flags: from /proc/self/fd where it is (a few system calls), else by
 * asking each number (a thousand).
 */
static void find_inherited(void)
{
  for (int fd = 0; fd < DESCRIPTOR_SCAN; fd++) inherited_flags[fd] = -1;
  DIR *listing = opendir("/proc/self/fd");
  if (!listing) {
    for (int fd = 0; fd < DESCRIPTOR_SCAN; fd++) inherited_flags[fd] = fcntl(fd, F_GETFL);
    return;
  }
  int own = dirfd(listing);
  for (struct dirent *entry; (entry = readdir(listing));) {
    char *end;
    long fd = strtol(entry->d_name, &end, 10);
    if (*end || end == entry->d_name || fd < 0 || fd >= DESCRIPTOR_SCAN || fd == own) continue;
    inherited_flags[fd] = fcntl((int)fd, F_GETFL);
  }
  closedir(listing);
}

static const char TEMPORARY_REPLY[] = "-ERR [SYS/TEMP] unable to run qmail-popup\r\n";

/* --- output -------------------------------------------------------------- */

/* One line on fd 2, the operator's log, from the strings given (NULL ends them). */
static void say(const char *first, ...)
{
  char line[1024] = "qmail-popup: ";
  size_t n = strlen(line);
  va_list parts;
  va_start(parts, first);
  for (const char *part = first; part; part = va_arg(parts, const char *))
    for (; *part && n < sizeof line - 1; part++) line[n++] = *part;
  va_end(parts);
  line[n++] = '\n';
  while (write(2, line, n) == -1 && errno == EINTR) {}
}

/* The decimal digits of n, in a static buffer of the caller's. */
static const char *decimal(long n, char text[24])
{
  char *p = text + 23;
  *p = 0;
  do *--p = (char)('0' + n % 10); while ((n /= 10) > 0);
  return p;
}

/* Writes all of buf to fd, each wait bounded by timeout seconds. */
static int write_all(int fd, const char *buf, size_t len, int timeout)
{
  while (len > 0) {
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int ready = poll(&p, 1, timeout > INT_MAX / 1000 ? INT_MAX : timeout * 1000);
    if (ready == -1 && errno == EINTR) continue;
    if (ready <= 0) return -1;
    ssize_t w = write(fd, buf, len);
    if (w == -1 && (errno == EINTR || errno == EAGAIN)) continue;
    if (w <= 0) return -1;
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

static void wipe(void *p, size_t n)
{
  volatile unsigned char *v = p;
  while (n--) *v++ = 0;
}

/* --- netstrings ---------------------------------------------------------- */

struct buffer {
  char *bytes;
  size_t length;
  size_t size;
};

static int append(struct buffer *b, const char *bytes, size_t n)
{
  if (b->length + n > b->size) {
    size_t size = b->size ? b->size : 4096;
    while (size < b->length + n) size *= 2;
    char *grown = malloc(size);
    if (!grown) return -1;
    if (b->bytes) {
      memcpy(grown, b->bytes, b->length);
      wipe(b->bytes, b->size);
      free(b->bytes);
    }
    b->bytes = grown;
    b->size = size;
  }
  memcpy(b->bytes + b->length, bytes, n);
  b->length += n;
  return 0;
}

static int netstring(struct buffer *b, const char *key, const char *value, size_t n)
{
  char text[24];
  size_t klen = strlen(key);
  const char *length = decimal((long)(klen + 1 + n), text);
  if (append(b, length, strlen(length)) || append(b, ":", 1) || append(b, key, klen) || append(b, "=", 1)
      || append(b, value, n) || append(b, ",", 1))
    return -1;
  return 0;
}

/* The next netstring of b at *at: its bytes in *item, *length. -1 if malformed or short. */
static int next_netstring(const struct buffer *b, size_t *at, const char **item, size_t *length)
{
  size_t n = 0, i = *at;
  if (i >= b->length) return -1;
  for (; i < b->length && b->bytes[i] >= '0' && b->bytes[i] <= '9'; i++) {
    if (n > MESSAGE_LIMIT) return -1;
    n = n * 10 + (size_t)(b->bytes[i] - '0');
  }
  if (i == *at || i >= b->length || b->bytes[i] != ':') return -1;
  i++;
  if (n > b->length - i || i + n >= b->length || b->bytes[i + n] != ',') return -1;
  *item = b->bytes + i;
  *length = n;
  *at = i + n + 1;
  return 0;
}

/* --- the plan the runtime sends ----------------------------------------- */

enum outcome { ACCEPT, FAIL, TEMPORARY, CRASH, UNRUNNABLE, OUTCOMES };
static const char *const OUTCOME_NAMES[OUTCOMES] = { "accept", "fail", "temporary", "crash", "unrunnable" };

struct plan {
  int complete;
  /* The runtime's own end, announced: 0 after QUIT, 1 after a refusal, a timeout, a hang-up; -1 if none. */
  int end;
  int input, output;
  int timeout;
  const char *credentials;
  size_t credentials_length;
  const char *reply[OUTCOMES];
  size_t reply_length[OUTCOMES];
  const char *line[OUTCOMES];
  size_t line_length[OUTCOMES];
  /* Changes to the login program's environment, in order: NAME=VALUE sets, NAME alone removes. */
  char **variables;
  size_t variable_count;
};

static int has_key(const char *item, size_t length, const char *key, const char **value, size_t *value_length)
{
  size_t k = strlen(key);
  if (length < k + 1 || memcmp(item, key, k) != 0 || item[k] != '=') return 0;
  *value = item + k + 1;
  *value_length = length - k - 1;
  return 1;
}

static int number(const char *v, size_t n, int *out)
{
  long x = 0;
  if (n == 0 || n > 9) return -1;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return -1;
    x = x * 10 + (v[i] - '0');
  }
  *out = (int)x;
  return 0;
}

/* Reads what the runtime says, in order; a later `output=` (after STLS) replaces an earlier one. */
static int read_plan(const struct buffer *said, struct plan *plan)
{
  size_t at = 0;
  const char *item, *v;
  size_t length, n;
  char key[32];
  while (at < said->length) {
    if (next_netstring(said, &at, &item, &length)) return -1;
    if (has_key(item, length, "input", &v, &n)) { if (number(v, n, &plan->input)) return -1; continue; }
    if (has_key(item, length, "output", &v, &n)) { if (number(v, n, &plan->output)) return -1; continue; }
    if (has_key(item, length, "timeout", &v, &n)) { if (number(v, n, &plan->timeout)) return -1; continue; }
    if (has_key(item, length, "credentials", &v, &n)) { plan->credentials = v; plan->credentials_length = n; continue; }
    int set = has_key(item, length, "env", &v, &n);
    if (set || has_key(item, length, "unset", &v, &n)) {
      if (n == 0 || memchr(v, 0, n) || (set ? !memchr(v, '=', n) : memchr(v, '=', n) != NULL)) return -1;
      char **grown = realloc(plan->variables, (plan->variable_count + 1) * sizeof *grown);
      if (!grown) return -1;
      plan->variables = grown;
      if (!(grown[plan->variable_count] = malloc(n + 1))) return -1;
      memcpy(grown[plan->variable_count], v, n);
      grown[plan->variable_count++][n] = 0;
      continue;
    }
    if (has_key(item, length, "run", &v, &n)) { plan->complete = 1; continue; }
    if (has_key(item, length, "end", &v, &n)) {
      if (number(v, n, &plan->end) || plan->end > 1) return -1;
      continue;
    }
    int known = 0;
    for (int o = 0; o < OUTCOMES && !known; o++) {
      strcpy(key, "reply-"); strcat(key, OUTCOME_NAMES[o]);
      if (has_key(item, length, key, &v, &n)) { plan->reply[o] = v; plan->reply_length[o] = n; known = 1; }
      strcpy(key, "log-"); strcat(key, OUTCOME_NAMES[o]);
      if (!known && has_key(item, length, key, &v, &n)) { plan->line[o] = v; plan->line_length[o] = n; known = 1; }
    }
    if (!known) return -1;
  }
  return 0;
}

/* --- the runtime --------------------------------------------------------- */

/* Where this program is: the runtime is its neighbour. */
static char *runtime_path(const char *argv0)
{
  static char path[PATH_MAX + sizeof RUNTIME_NAME + 1];
  ssize_t n = -1;
#ifdef __linux__
  n = readlink("/proc/self/exe", path, PATH_MAX);
#endif
#ifdef __FreeBSD__
  {
    int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME, -1 };
    size_t size = PATH_MAX;
    if (sysctl(mib, 4, path, &size, NULL, 0) == 0 && size > 0) n = (ssize_t)strnlen(path, size);
  }
#endif
  if (n <= 0 && strchr(argv0, '/') && strlen(argv0) < PATH_MAX) {
    n = (ssize_t)strlen(argv0);
    memcpy(path, argv0, (size_t)n);
  }
  if (n <= 0) return NULL;
  path[n] = 0;
  char *slash = strrchr(path, '/');
  if (!slash) return NULL;
  strcpy(slash + 1, RUNTIME_NAME);
  return path;
}

/* The runtime may grow: it needs far more address space than a C program. */
static const int RAISED_LIMITS[] = {
  RLIMIT_AS, RLIMIT_DATA, RLIMIT_STACK,
#ifdef RLIMIT_RSS
  RLIMIT_RSS,
#endif
#ifdef RLIMIT_MEMLOCK
  RLIMIT_MEMLOCK,
#endif
#ifdef RLIMIT_NPROC
  RLIMIT_NPROC,
#endif
};

/* In the runtime's process, before exec: raised limits, no core file, empty environment, confined (confine.c). */
static void exec_runtime(const char *path, int control)
{
  struct rlimit limit;
  for (size_t i = 0; i < sizeof RAISED_LIMITS / sizeof RAISED_LIMITS[0]; i++)
    if (getrlimit(RAISED_LIMITS[i], &limit) == 0 && limit.rlim_cur != limit.rlim_max) {
      limit.rlim_cur = limit.rlim_max;
      setrlimit(RAISED_LIMITS[i], &limit);
    }
  if (getrlimit(RLIMIT_CORE, &limit) == 0) {
    limit.rlim_cur = 0;
    setrlimit(RLIMIT_CORE, &limit);
  }
  /* The runtime does not outlive us: a signal that ends us ends it. */
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
#ifdef __FreeBSD__
  int kill_with_parent = SIGKILL;
  procctl(P_PID, 0, PROC_PDEATHSIG_CTL, &kill_with_parent);
#endif
  /* Every signal at its default and none blocked, whatever the launcher set: for the runtime only. */
  for (int number = 1; number < NSIG; number++)
    if (number != SIGKILL && number != SIGSTOP) signal(number, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int fd = fcntl(control, F_DUPFD, 3);
  if (fd == -1) {
    say("unable to pass the control socket: ", strerror(errno), NULL);
    _exit(111);
  }
  confine_runtime(path);
  char text[24];
  /* In ps, the runtime by its own name: "qmail-popup 6" would read as a qmail-popup for host 6. */
  char *argv[] = { RUNTIME_NAME, (char *)decimal(fd, text), NULL };
  char *envp[] = { NULL };
  execve(path, argv, envp);
  say("unable to run ", path, ": ", strerror(errno), NULL);
  _exit(111);
}

/* The runtime shares our descriptors' open files: a runtime that made one non-blocking (Node does) leaves it as it was. */
static void restore_inherited_flags(void)
{
  for (int fd = 0; fd < DESCRIPTOR_SCAN; fd++) {
    if (inherited_flags[fd] == -1) continue;
    int flags = fcntl(fd, F_GETFL);
    if (flags != -1 && (flags & O_NONBLOCK) != (inherited_flags[fd] & O_NONBLOCK))
      fcntl(fd, F_SETFL, (flags & ~O_NONBLOCK) | (inherited_flags[fd] & O_NONBLOCK));
  }
}

/* What we tell the runtime: our pid, which descriptors we inherited, our arguments and environment. */
static int introduce(struct buffer *b, int argc, char **argv)
{
  char text[24];
  const char *pid = decimal((long)getpid(), text);
  if (netstring(b, "pid", pid, strlen(pid))) return -1;
  find_inherited();
  for (int fd = 0; fd < DESCRIPTOR_SCAN; fd++) {
    if (inherited_flags[fd] == -1) continue;
    const char *number = decimal(fd, text);
    if (netstring(b, "open", number, strlen(number))) return -1;
  }
  for (int i = 1; i < argc; i++)
    if (netstring(b, "arg", argv[i], strlen(argv[i]))) return -1;
  for (char **e = environ; *e; e++)
    if (netstring(b, "env", *e, strlen(*e))) return -1;
  return netstring(b, "end", "", 0);
}

/* --- the login program --------------------------------------------------- */

/* Whether entry (NAME=VALUE) has the name that change begins with (NAME=VALUE or NAME). */
static int same_name(const char *entry, const char *change)
{
  size_t name = strcspn(change, "=");
  return strncmp(entry, change, name) == 0 && entry[name] == '=';
}

/* Our environment with the plan's changes: a set replaces every same-named entry, an unset removes them. */
static char **login_environment(const struct plan *plan)
{
  size_t count = 0;
  while (environ[count]) count++;
  char **env = malloc((count + plan->variable_count + 1) * sizeof *env);
  if (!env) return NULL;
  memcpy(env, environ, count * sizeof *env);
  for (size_t i = 0; i < plan->variable_count; i++) {
    const char *change = plan->variables[i];
    size_t kept = 0, replaced = 0;
    for (size_t j = 0; j < count; j++) {
      if (!same_name(env[j], change)) env[kept++] = env[j];
      else if (strchr(change, '=') && !replaced++) env[kept++] = plan->variables[i];
    }
    if (strchr(change, '=') && !replaced) env[kept++] = plan->variables[i];
    count = kept;
  }
  env[count] = NULL;
  return env;
}

/* execvp(3)'s search, but no fallback to /bin/sh for a file the kernel refuses. */
static int exec_login(char **argv, char **env)
{
  const char *file = argv[0];
  if (!*file) return ENOENT;
  if (strchr(file, '/')) {
    execve(file, argv, env);
    return errno;
  }
  const char *path = NULL;
  /* The first PATH, as getenv(3) finds it. */
  for (char **e = env; *e && !path; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  if (!path) path = "/bin:/usr/bin";
  int found = ENOENT;
  char candidate[PATH_MAX];
  for (;;) {
    const char *colon = strchr(path, ':');
    size_t dir = colon ? (size_t)(colon - path) : strlen(path);
    if (dir + 1 + strlen(file) < sizeof candidate) {
      if (dir == 0) candidate[0] = 0;
      else { memcpy(candidate, path, dir); candidate[dir] = '/'; candidate[dir + 1] = 0; }
      strcat(candidate, file);
      execve(candidate, argv, env);
      if (errno == EACCES) found = EACCES;
      else if (errno != ENOENT && errno != ENOTDIR) return errno;
    }
    if (!colon) return found;
    path = colon + 1;
  }
}

static enum outcome outcome_of(int status)
{
  if (WIFSIGNALED(status)) return CRASH;
  if (!WIFEXITED(status)) return CRASH;
  if (WEXITSTATUS(status) == 0) return ACCEPT;
  if (WEXITSTATUS(status) == 111) return TEMPORARY;
  return FAIL;
}

/* Starts the login program, hands it the credentials, waits. */
static enum outcome run_login(char **argv, struct plan *plan)
{
  char **env = login_environment(plan);
  int credentials[2], report[2];
  if (!env) { say("unable to run ", argv[0], ": out of memory", NULL); return UNRUNNABLE; }
  if (pipe2(credentials, O_CLOEXEC) == -1) { say("unable to make a pipe: ", strerror(errno), NULL); return UNRUNNABLE; }
  if (pipe2(report, O_CLOEXEC) == -1) { say("unable to make a pipe: ", strerror(errno), NULL); return UNRUNNABLE; }
  pid_t child = fork();
  if (child == -1) { say("unable to fork: ", strerror(errno), NULL); return UNRUNNABLE; }
  if (child == 0) {
    /* The C program restores SIGPIPE's default; SIGCHLD is the launcher's again. */
    signal(SIGPIPE, SIG_DFL);
    sigaction(SIGCHLD, &launcher_sigchld, NULL);
    int error = 0;
    /* The credentials out of the way of 0-2 first, then the network, then fd 3. */
    int secret = fcntl(credentials[0], F_DUPFD_CLOEXEC, 3);
    if (secret == -1
        || dup2(plan->input, 0) == -1 || dup2(plan->output, 1) == -1 || dup2(plan->output, 2) == -1
        || dup2(secret, 3) == -1 || fcntl(3, F_SETFD, 0) == -1)
      error = errno;
    else {
      /* The network blocking, whatever the runtime left (qmail-pop3d needs it so). */
      for (int fd = 0; fd <= 1; fd++) {
        int flags = fcntl(fd, F_GETFL);
        if (flags != -1 && (flags & O_NONBLOCK)) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
      }
      error = exec_login(argv, env);
    }
    while (write(report[1], &error, sizeof error) == -1 && errno == EINTR) {}
    _exit(127);
  }
  close(credentials[0]);
  close(report[1]);
  int error = 0;
  ssize_t got;
  while ((got = read(report[0], &error, sizeof error)) == -1 && errno == EINTR) {}
  close(report[0]);
  /* exec happened (the report pipe closed unwritten): the credentials, as far as the program reads them. */
  if (got != sizeof error) write_all(credentials[1], plan->credentials, plan->credentials_length, plan->timeout);
  close(credentials[1]);
  wipe((void *)plan->credentials, plan->credentials_length);
  int status;
  while (waitpid(child, &status, 0) == -1)
    if (errno != EINTR) { say("unable to wait for ", argv[0], ": ", strerror(errno), NULL); return TEMPORARY; }
  if (got == sizeof error) {
    say("unable to run ", argv[0], ": ", strerror(error), NULL);
    return UNRUNNABLE;
  }
  return outcome_of(status);
}

/* --- main ---------------------------------------------------------------- */

static void harden(void)
{
#ifdef __linux__
  /* No core file and no ptrace: this process will hold a password. */
  prctl(PR_SET_DUMPABLE, 0);
#endif
#ifdef __FreeBSD__
  int disable = PROC_TRACE_CTL_DISABLE;
  procctl(P_PID, 0, PROC_TRACE_CTL, &disable);
#endif
  /* A client or log reader gone makes write fail, not kill us. */
  signal(SIGPIPE, SIG_IGN);
  /* An ignored SIGCHLD would take our children's ends from us. */
  struct sigaction default_action = { .sa_handler = SIG_DFL };
  sigemptyset(&default_action.sa_mask);
  sigaction(SIGCHLD, &default_action, &launcher_sigchld);
}

static int temporary_failure(int output, const char *why, const char *detail)
{
  say(why, detail, NULL);
  write_all(output, TEMPORARY_REPLY, sizeof TEMPORARY_REPLY - 1, DEFAULT_TIMEOUT);
  return 1;
}

int main(int argc, char **argv)
{
  harden();
  const char *runtime = runtime_path(argv[0]);
  if (!runtime) return temporary_failure(1, "unable to find ", RUNTIME_NAME);

  struct buffer introduction = { 0 };
  if (introduce(&introduction, argc, argv)) return temporary_failure(1, "out of memory", "");

  int control[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) == -1)
    return temporary_failure(1, "unable to make a socket pair: ", strerror(errno));
  pid_t session = fork();
  if (session == -1) return temporary_failure(1, "unable to fork: ", strerror(errno));
  if (session == 0) exec_runtime(runtime, control[1]);
  close(control[1]);

  /* Introduce ourselves, then listen until the runtime is done. */
  write_all(control[0], introduction.bytes, introduction.length, DEFAULT_TIMEOUT);
  wipe(introduction.bytes, introduction.size);
  struct buffer said = { 0 };
  char chunk[4096];
  for (;;) {
    ssize_t n = read(control[0], chunk, sizeof chunk);
    if (n == -1 && errno == EINTR) continue;
    if (n <= 0) break;
    if (said.length + (size_t)n > MESSAGE_LIMIT || append(&said, chunk, (size_t)n)) {
      kill(session, SIGKILL);
      break;
    }
  }
  wipe(chunk, sizeof chunk);
  close(control[0]);
  int status;
  while (waitpid(session, &status, 0) == -1)
    if (errno != EINTR) return temporary_failure(1, "unable to wait for the runtime", "");
  restore_inherited_flags();

  struct plan plan = { .end = -1, .input = 0, .output = 1, .timeout = DEFAULT_TIMEOUT };
  int readable = read_plan(&said, &plan) == 0;
  if (!plan.complete || !readable || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    wipe(said.bytes, said.size);
    /* No login: an end the runtime announced is the session's; any other end of it is a failure. */
    if (readable && plan.end >= 0 && !plan.complete) return plan.end;
    char text[24];
    if (WIFSIGNALED(status))
      return temporary_failure(plan.output, "the runtime was killed by signal ", decimal(WTERMSIG(status), text));
    if (!readable) return temporary_failure(plan.output, "the runtime's plan is unreadable", "");
    return temporary_failure(plan.output, "the runtime failed with status ", decimal(WEXITSTATUS(status), text));
  }

  enum outcome outcome = run_login(argv + 2, &plan);
  if (plan.reply[outcome] && plan.reply_length[outcome] > 0)
    write_all(plan.output, plan.reply[outcome], plan.reply_length[outcome], plan.timeout);
  if (plan.line[outcome] && plan.line_length[outcome] > 0)
    write_all(5, plan.line[outcome], plan.line_length[outcome], plan.timeout);
  wipe(said.bytes, said.size);
  return outcome == ACCEPT ? 0 : 1;
}
