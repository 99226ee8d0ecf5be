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
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include "confine.h"
#include "resident.h"
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
/*
 * The bounds of what the runtime may say (doc/control-protocol.md): the
 * plan whole, and each of its items. A name or a secret comes from one
 * client line, and the runtime reads none longer than 2048 bytes
 * (SASL_RESPONSE_LIMIT, src/core/sasl.ts); the fd-5 line holds the name
 * escaped, at most four bytes for one; an SSL_* value fits sslserver's
 * answer (TLS_ANSWER_LIMIT, src/core/tls-environment.ts).
 */
#define MESSAGE_LIMIT (256 * 1024)
#define CREDENTIAL_FIELD_LIMIT 2048
#define REPLY_LIMIT 512
#define LOG_LINE_LIMIT 16384
#define VARIABLE_NAME_LIMIT 128
#define VARIABLE_VALUE_LIMIT 65536
#define VARIABLE_LIMIT 256
/* Descriptors 0 to this one less are looked at, for the runtime's list and their flags. */
#define DESCRIPTOR_SCAN 1024
/* POP3TIMEOUT: unset, empty, not digits or 0 gives the default; above the maximum, the maximum (milliseconds fit 31 bits). */
#define DEFAULT_TIMEOUT 1200
#define MAXIMUM_TIMEOUT 2147483
/* A runtime that says nothing this long beyond two timeouts is wedged (its longest quiet wait is one timeout, or the PROXY header's 10 seconds). */
#define WEDGE_MARGIN 10
/* How long `qmail-popup --version` waits for the runtime to say its version. */
#define VERSION_QUERY_SECONDS 30

extern char **environ;

/* How our launcher left SIGCHLD: we need it at its default to wait, the login program gets it back. */
static struct sigaction launcher_sigchld;

/* The descriptors we inherited, and which of them were non-blocking as we found them: a bit each. */
static unsigned char inherited[DESCRIPTOR_SCAN / 8], inherited_nonblocking[DESCRIPTOR_SCAN / 8];

static int has_bit(const unsigned char *set, int fd) { return set[fd / 8] >> (fd % 8) & 1; }
static void set_bit(unsigned char *set, int fd) { set[fd / 8] |= (unsigned char)(1 << (fd % 8)); }

static void note_inherited(int fd)
{
  int flags = fcntl(fd, F_GETFL);
  if (flags == -1) return;
  set_bit(inherited, fd);
  if (flags & O_NONBLOCK) set_bit(inherited_nonblocking, fd);
}

/*
 * Finds the descriptors we inherited (below DESCRIPTOR_SCAN) and their
 * flags: from /proc/self/fd on Linux (a few system calls, read with
 * getdents64 into our stack: opendir(3) would start malloc for it), else
 * by asking each number (a thousand).
 */
static void find_inherited(void)
{
#ifdef __linux__
  int listing = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (listing != -1) {
    /* linux_dirent64: the kernel's, as getdents64(2) fills it. */
    struct entry { uint64_t inode; int64_t offset; unsigned short length; unsigned char type; char name[]; };
    char entries[1024] __attribute__((aligned(8)));
    long got;
    while ((got = syscall(SYS_getdents64, listing, entries, sizeof entries)) > 0)
      for (long at = 0; at < got; at += ((struct entry *)(entries + at))->length) {
        const char *name = ((struct entry *)(entries + at))->name;
        long fd = confine_decimal(name, strlen(name), DESCRIPTOR_SCAN - 1);
        if (fd != -1 && fd != listing) note_inherited((int)fd);
      }
    close(listing);
    if (got == 0) return;
    memset(inherited, 0, sizeof inherited);
    memset(inherited_nonblocking, 0, sizeof inherited_nonblocking);
  }
#endif
  for (int fd = 0; fd < DESCRIPTOR_SCAN; fd++) note_inherited(fd);
}

static const char TEMPORARY_REPLY[] = "-ERR [SYS/TEMP] unable to run qmail-popup\r\n";

/* --- output -------------------------------------------------------------- */

/* strsignal(3) in glibc's words where musl's differ (SIGFPE, SIGCHLD, the real-time signals), in a buffer of the caller's. */
static const char *decimal(long n, char text[24]);
static const char *signal_text(int number, char text[40])
{
  if (number == SIGFPE) return "Floating point exception";
  if (number == SIGCHLD) return "Child exited";
  if (number < 32 || number > 64) return strsignal(number);
  char digits[24];
  strcpy(text, number < 34 ? "Unknown signal " : "Real-time signal ");
  return strcat(text, decimal(number < 34 ? number : number - 34, digits));
}

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

/*
 * The bytes of the control socket, each way in turn: our introduction, then
 * what the runtime says (its plan whole). Static, not malloc's: a page of it
 * costs nothing until written, and a front waiting for its plan has written
 * one or two (an introduction larger than it grows into malloc's).
 */
static char control_bytes[MESSAGE_LIMIT];

struct buffer {
  char *bytes;
  size_t length;
  size_t size;
  /* How far bytes was ever written: what a wipe covers. */
  size_t touched;
};

/* A buffer on control_bytes, of size bytes of it. */
static struct buffer control_buffer(size_t size)
{
  return (struct buffer){ .bytes = control_bytes, .size = size };
}

static void wipe_buffer(struct buffer *b)
{
  wipe(b->bytes, b->touched);
  b->touched = 0;
}

static int append(struct buffer *b, const char *bytes, size_t n)
{
  if (b->length + n > b->size) {
    size_t size = b->size ? b->size : 4096;
    while (size < b->length + n) size *= 2;
    char *grown = malloc(size);
    if (!grown) return -1;
    if (b->bytes) {
      memcpy(grown, b->bytes, b->length);
      wipe_buffer(b);
      if (b->bytes != control_bytes) free(b->bytes);
    }
    b->bytes = grown;
    b->size = size;
    b->touched = b->length;
  }
  memcpy(b->bytes + b->length, bytes, n);
  b->length += n;
  if (b->length > b->touched) b->touched = b->length;
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

/* The next netstring of b at *at: 1 with its bytes in *item, *length; 0 if it is not all there yet; -1 if malformed, -2 if longer than MESSAGE_LIMIT. */
static int next_netstring(const struct buffer *b, size_t *at, const char **item, size_t *length)
{
  size_t n = 0, i = *at;
  for (; i < b->length && b->bytes[i] >= '0' && b->bytes[i] <= '9'; i++) {
    if (i > *at && b->bytes[*at] == '0') return -1;
    n = n * 10 + (size_t)(b->bytes[i] - '0');
    if (n > MESSAGE_LIMIT) return -2;
  }
  if (i == b->length) return 0;
  if (i == *at || b->bytes[i] != ':') return -1;
  i++;
  if (b->length - i < n + 1) return 0;
  if (b->bytes[i + n] != ',') return -1;
  *item = b->bytes + i;
  *length = n;
  *at = i + n + 1;
  return 1;
}

/* --- the plan the runtime sends ----------------------------------------- */

/*
 * doc/control-protocol.md is the contract; this reader keeps it. The
 * runtime is not trusted: whatever it says that the contract does not
 * allow ends the session with TEMPORARY_REPLY, the login program unrun.
 */

enum outcome { ACCEPT, FAIL, TEMPORARY, CRASH, UNRUNNABLE, OUTCOMES };
static const char *const OUTCOME_NAMES[OUTCOMES] = { "accept", "fail", "temporary", "crash", "unrunnable" };

/* Where the runtime is in what it says: its version first, then the session, then the plan or its end. */
enum phase { VERSION_FIRST, SESSION, PLAN, SAID };

struct plan {
  enum phase phase;
  int complete;
  /* The runtime's own end, announced: 0 after QUIT, 1 after a refusal, a timeout, a hang-up; -1 if none. */
  int end;
  /* STLS was announced: the session is on the TLS pair our SSLREADFD and SSLWRITEFD name. */
  int tls;
  /* Where the client is written to: 1, or SSLWRITEFD after the runtime's STLS notice. */
  int client;
  int input, output;
  int has_output;
  /* POP3TIMEOUT, as we read it: each wait for the client or the log. */
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

/* A descriptor number as we write them: decimal, no sign, no leading zero, below DESCRIPTOR_SCAN. */
static int descriptor(const char *v, size_t n, int *out)
{
  long x = confine_decimal(v, n, DESCRIPTOR_SCAN - 1);
  if (x == -1 || (n > 1 && v[0] == '0')) return -1;
  *out = (int)x;
  return 0;
}

/* One of our descriptors our environment names (SSLREADFD, SSLWRITEFD) and we inherited; -1 if none. */
static int inherited_named(const char *name)
{
  const char *v = getenv(name);
  int fd;
  if (!v || descriptor(v, strlen(v), &fd) || !has_bit(inherited, fd)) return -1;
  return fd;
}

static int has_byte(const char *v, size_t n, char c) { return memchr(v, c, n) != NULL; }

/* The fixed set a PROXY header may change (src/core/proxy-protocol.ts): the first eight set or unset, the rest unset. */
static const char *const PROXY_NAMES[] = {
  "TCPLOCALIP", "TCPLOCALPORT", "TCPREMOTEIP", "TCPREMOTEPORT",
  "TCP6LOCALIP", "TCP6LOCALPORT", "TCP6REMOTEIP", "TCP6REMOTEPORT",
  "TCPLOCALHOST", "TCPREMOTEHOST", "TCPREMOTEINFO", "TCP6LOCALHOST", "TCP6REMOTEHOST", "TCP6INTERFACE",
};
#define PROXY_SETTABLE 8

static int proxy_name(const char *name, size_t n, size_t among)
{
  for (size_t i = 0; i < among; i++)
    if (strlen(PROXY_NAMES[i]) == n && memcmp(PROXY_NAMES[i], name, n) == 0) return 1;
  return 0;
}

/* An IPv4 or IPv6 address as text, as inet_pton(3) reads it. */
static int address(const char *v, size_t n)
{
  char text[64];
  unsigned char binary[16];
  if (n == 0 || n >= sizeof text) return 0;
  memcpy(text, v, n);
  text[n] = 0;
  return inet_pton(AF_INET, text, binary) == 1 || inet_pton(AF_INET6, text, binary) == 1;
}

/* A port: decimal, no leading zero, at most 65535. */
static int port(const char *v, size_t n)
{
  return confine_decimal(v, n, 65535) != -1 && !(n > 1 && v[0] == '0');
}

/* A number an administrator set, past its leading zeros (one kept for 0): confine_decimal reads ten digits at most. */
static const char *significant(const char *text)
{
  while (text[0] == '0' && text[1]) text++;
  return text;
}

/* Why an env= or unset= item is refused, or NULL: see doc/control-protocol.md, "The plan". */
static const char *refused_variable(const struct plan *plan, const char *v, size_t n, int set)
{
  size_t name = set ? (size_t)((const char *)memchr(v, '=', n) - v) : n;
  if (set && !has_byte(v, n, '=')) return "an env item without =";
  if (name == 0) return "an empty variable name";
  if (name > VARIABLE_NAME_LIMIT) return "a variable name too long";
  for (size_t i = 0; i < name; i++)
    if (!((v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '_')) return "a variable name not of A-Z, 0-9, _";
  const char *value = v + name + 1;
  size_t value_length = set ? n - name - 1 : 0;
  if (has_byte(value, value_length, 0) || has_byte(value, value_length, '\r') || has_byte(value, value_length, '\n'))
    return "a variable value with NUL, CR or LF";
  if (value_length > VARIABLE_VALUE_LIMIT) return "a variable value too long";
  if (plan->variable_count >= VARIABLE_LIMIT) return "too many variables";
  for (size_t i = 0; i < plan->variable_count; i++)
    if (strncmp(plan->variables[i], v, name) == 0 && (plan->variables[i][name] == '=' || plan->variables[i][name] == 0))
      return "a variable named twice";
  if (set && name > 4 && memcmp(v, "SSL_", 4) == 0) return plan->tls ? NULL : "an SSL_ variable without STLS";
  const char *proxy = getenv("QMAIL_POPUP_PROXY");
  if (!proxy_name(v, name, set ? PROXY_SETTABLE : sizeof PROXY_NAMES / sizeof PROXY_NAMES[0]))
    return set ? "a variable the session may not set" : "a variable the session may not unset";
  if (!proxy || !*proxy) return "a TCP variable without QMAIL_POPUP_PROXY";
  if (set && v[name - 1] == 'P' && !address(value, value_length)) return "a TCP address that is not an IP address";
  if (set && v[name - 1] == 'T' && !port(value, value_length)) return "a TCP port that is not a port";
  return NULL;
}

/* Why the credentials are refused, or NULL: name\0secret\0<PID.TIME@HOST>\0, our pid and our argv[1]. */
static const char *refused_credentials(const char *v, size_t n, const char *host)
{
  const char *first = memchr(v, 0, n);
  if (!first) return "credentials without a NUL";
  const char *second = memchr(first + 1, 0, n - (size_t)(first + 1 - v));
  if (!second) return "credentials with one field";
  const char *third = memchr(second + 1, 0, n - (size_t)(second + 1 - v));
  if (!third) return "credentials with two fields";
  if (third != v + n - 1) return "credentials with more than three fields";
  if ((size_t)(first - v) > CREDENTIAL_FIELD_LIMIT) return "a name too long";
  if ((size_t)(second - first - 1) > CREDENTIAL_FIELD_LIMIT) return "a secret too long";
  const char *t = second + 1;
  size_t tn = (size_t)(third - t);
  char text[24];
  const char *pid = decimal((long)getpid(), text);
  size_t pn = strlen(pid), hn = strlen(host), digits = 0;
  if (tn < 1 + pn + 1 || t[0] != '<' || memcmp(t + 1, pid, pn) != 0 || t[1 + pn] != '.') return "a timestamp not of our pid";
  for (size_t i = 2 + pn; i < tn && t[i] >= '0' && t[i] <= '9'; i++) digits++;
  if (digits == 0 || digits > 20) return "a timestamp without its time";
  size_t at = 2 + pn + digits;
  if (tn != at + 1 + hn + 1 || t[at] != '@' || memcmp(t + at + 1, host, hn) != 0 || t[tn - 1] != '>') return "a timestamp not of our hostname";
  return NULL;
}

/* Why a reply (one line ending CRLF) or a log line (one line ending LF) is refused, or NULL. */
static const char *refused_line(const char *v, size_t n, int reply)
{
  if (reply) {
    if (n < 2 || n > REPLY_LIMIT) return "a reply empty or too long";
    if (v[n - 2] != '\r' || v[n - 1] != '\n' || has_byte(v, n - 2, '\r') || has_byte(v, n - 2, '\n')) return "a reply not one line ending CRLF";
    return NULL;
  }
  if (n < 1 || n > LOG_LINE_LIMIT) return "a log line empty or too long";
  if (v[n - 1] != '\n' || has_byte(v, n - 1, '\n')) return "a log line not one line ending LF";
  return NULL;
}

static int keep_variable(struct plan *plan, const char *v, size_t n)
{
  char **grown = realloc(plan->variables, (plan->variable_count + 1) * sizeof *grown);
  if (!grown) return -1;
  plan->variables = grown;
  if (!(grown[plan->variable_count] = malloc(n + 1))) return -1;
  memcpy(grown[plan->variable_count], v, n);
  grown[plan->variable_count++][n] = 0;
  return 0;
}

/* Why the runtime's version item is refused, in a line for fd 2, or NULL. */
static char version_problem[256 + sizeof VERSION];

/*
 * Takes one item the runtime said: NULL, or why it is refused (never its
 * value: it may hold a secret). The items point into the caller's buffer.
 */
static const char *take_item(struct plan *plan, const char *item, size_t length, const char *host)
{
  const char *v;
  size_t n;
  char key[32];
  switch (plan->phase) {
  case VERSION_FIRST:
    if (!has_key(item, length, "version", &v, &n)) return "";
    if (n != strlen(VERSION) || memcmp(v, VERSION, n) != 0) {
      char theirs[64];
      size_t i;
      for (i = 0; i < n && i < sizeof theirs - 1; i++) theirs[i] = (v[i] > ' ' && v[i] < 127) ? v[i] : '?';
      theirs[i] = 0;
      strcpy(version_problem, "version mismatch: this qmail-popup is " VERSION ", its qmail-popup-runtime is ");
      strcat(version_problem, theirs);
      strcat(version_problem, ": install both from one release");
      return version_problem;
    }
    plan->phase = SESSION;
    return NULL;
  case SESSION:
    if (has_key(item, length, "alive", &v, &n)) return n ? "an alive item with a value" : NULL;
    if (has_key(item, length, "end", &v, &n)) {
      if (n != 1 || (v[0] != '0' && v[0] != '1')) return "an end item not 0 or 1";
      plan->end = v[0] - '0';
      plan->phase = SAID;
      return NULL;
    }
    if (has_key(item, length, "output", &v, &n)) {
      int fd, read_fd = inherited_named("SSLREADFD"), write_fd = inherited_named("SSLWRITEFD");
      if (plan->tls) return "a second STLS notice";
      if (descriptor(v, n, &fd) || read_fd == -1 || write_fd != fd) return "an STLS notice not naming our SSLWRITEFD";
      plan->tls = 1;
      plan->client = fd;
      return NULL;
    }
    if (has_key(item, length, "input", &v, &n)) {
      if (descriptor(v, n, &plan->input)) return "an input item not a descriptor";
      plan->phase = PLAN;
      return NULL;
    }
    if (has_key(item, length, "run", &v, &n)) return "run before the plan";
    return "an unknown key";
  case PLAN:
    if (has_key(item, length, "output", &v, &n)) {
      if (plan->has_output++) return "a second output item";
      return descriptor(v, n, &plan->output) ? "an output item not a descriptor" : NULL;
    }
    if (has_key(item, length, "credentials", &v, &n)) {
      if (plan->credentials) return "a second credentials item";
      const char *why = refused_credentials(v, n, host);
      if (why) return why;
      plan->credentials = v;
      plan->credentials_length = n;
      return NULL;
    }
    {
      int set = has_key(item, length, "env", &v, &n);
      if (set || has_key(item, length, "unset", &v, &n)) {
        const char *why = refused_variable(plan, v, n, set);
        if (why) return why;
        return keep_variable(plan, v, n) ? "a plan: out of memory" : NULL;
      }
    }
    if (has_key(item, length, "run", &v, &n)) {
      int tls_input = inherited_named("SSLREADFD"), tls_output = inherited_named("SSLWRITEFD");
      if (n) return "a run item with a value";
      if (!plan->has_output || !plan->credentials) return "a plan without output or credentials";
      if (plan->tls ? (plan->input != tls_input || plan->output != tls_output) : (plan->input != 0 || plan->output != 1))
        return plan->tls ? "descriptors other than our SSLREADFD and SSLWRITEFD" : "descriptors other than 0 and 1";
      plan->complete = 1;
      plan->phase = SAID;
      return NULL;
    }
    for (int o = 0; o < OUTCOMES; o++) {
      for (int reply = 1; reply >= 0; reply--) {
        strcpy(key, reply ? "reply-" : "log-");
        strcat(key, OUTCOME_NAMES[o]);
        if (!has_key(item, length, key, &v, &n)) continue;
        const char **where = reply ? &plan->reply[o] : &plan->line[o];
        size_t *where_length = reply ? &plan->reply_length[o] : &plan->line_length[o];
        if (*where) return reply ? "a second reply for one outcome" : "a second log line for one outcome";
        const char *why = refused_line(v, n, reply);
        if (why) return why;
        *where = v;
        *where_length = n;
        return NULL;
      }
    }
    return "an unknown key";
  case SAID:
    return plan->complete ? "an item after run" : "an item after end";
  }
  return "an unknown key";
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
    say("unable to pass the control socket: ", error_text(errno), NULL);
    _exit(111);
  }
  confine_runtime(path);
  char text[24];
  /* In ps, the runtime by its own name: "qmail-popup 6" would read as a qmail-popup for host 6. */
  char *argv[] = { RUNTIME_NAME, (char *)decimal(fd, text), NULL };
  char *envp[] = { NULL };
  execve(path, argv, envp);
  say("unable to run ", path, ": ", error_text(errno), NULL);
  _exit(111);
}

/* The runtime shares our descriptors' open files: a runtime that made one non-blocking (Node does) leaves it as it was. */
static void restore_inherited_flags(void)
{
  for (int fd = 0; fd < DESCRIPTOR_SCAN; fd++) {
    if (!has_bit(inherited, fd)) continue;
    int flags = fcntl(fd, F_GETFL), nonblocking = has_bit(inherited_nonblocking, fd) ? O_NONBLOCK : 0;
    if (flags != -1 && (flags & O_NONBLOCK) != nonblocking) fcntl(fd, F_SETFL, (flags & ~O_NONBLOCK) | nonblocking);
  }
}

/* POP3TIMEOUT, read here once: the runtime gets the number in the introduction. */
static int timeout_of(const char *text)
{
  if (!text || !*text) return DEFAULT_TIMEOUT;
  const char *value = significant(text);
  size_t n = strlen(value);
  long seconds = confine_decimal(value, n, MAXIMUM_TIMEOUT);
  /* Digits all, but above the maximum: the maximum, not a refusal. */
  if (seconds == -1 && strspn(value, "0123456789") == n) return MAXIMUM_TIMEOUT;
  return seconds <= 0 ? DEFAULT_TIMEOUT : (int)seconds;
}

/* What we tell the runtime: our version, POP3TIMEOUT, our pid, which descriptors we inherited, our arguments and environment. */
static int introduce(struct buffer *b, int argc, char **argv, int timeout)
{
  char text[24];
  if (netstring(b, "version", VERSION, strlen(VERSION))) return -1;
  const char *seconds = decimal(timeout, text);
  if (netstring(b, "timeout", seconds, strlen(seconds))) return -1;
  const char *pid = decimal((long)getpid(), text);
  if (netstring(b, "pid", pid, strlen(pid))) return -1;
  find_inherited();
  for (int fd = 0; fd < DESCRIPTOR_SCAN; fd++) {
    if (!has_bit(inherited, fd)) continue;
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

/* execvp(3)'s search, but no fallback to /bin/sh for a file the kernel refuses. Not inlined: its PATH_MAX of stack is the login's child's, not every front's. */
static __attribute__((noinline)) int exec_login(char **argv, char **env)
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
  if (pipe2(credentials, O_CLOEXEC) == -1) { say("unable to make a pipe: ", error_text(errno), NULL); return UNRUNNABLE; }
  if (pipe2(report, O_CLOEXEC) == -1) { say("unable to make a pipe: ", error_text(errno), NULL); return UNRUNNABLE; }
  pid_t child = fork();
  if (child == -1) { say("unable to fork: ", error_text(errno), NULL); return UNRUNNABLE; }
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
    if (errno != EINTR) { say("unable to wait for ", argv[0], ": ", error_text(errno), NULL); return TEMPORARY; }
  if (got == sizeof error) {
    say("unable to run ", argv[0], ": ", error_text(error), NULL);
    return UNRUNNABLE;
  }
  /*
   * The fd-5 line says Reject for a wrong password, a temporary failure and
   * a crash alike: the operator's log says which, so that a broken login
   * program does not pass for password guessing. A wrong password (exit 1)
   * gets no line here: fd 5 has it.
   */
  char pid[24], signal_number[24], signal_name[40];
  if (WIFSIGNALED(status))
    say("pid ", decimal((long)getpid(), pid), ": ", argv[0], " was killed by signal ",
        decimal(WTERMSIG(status), signal_number), " (", signal_text(WTERMSIG(status), signal_name), ")", NULL);
  else if (WIFEXITED(status) && WEXITSTATUS(status) == 111)
    say("pid ", decimal((long)getpid(), pid), ": ", argv[0], " exited 111: a temporary failure", NULL);
  return outcome_of(status);
}

/*
 * QMAIL_POPUP_FAILURE_DELAY=SECONDS: how long a wrong password waits for its
 * reply, against guessing (Dovecot's auth_failure_delay). Off unless set.
 * The login program has ended: this holds only this connection.
 */
#define FAILURE_DELAY_LIMIT 60
static void delay_failure(void)
{
  const char *text = getenv("QMAIL_POPUP_FAILURE_DELAY");
  if (!text || !*text) return;
  const char *value = significant(text);
  long seconds = confine_decimal(value, strlen(value), FAILURE_DELAY_LIMIT);
  if (seconds == -1) {
    say("QMAIL_POPUP_FAILURE_DELAY is not a number of seconds from 0 to 60: no delay", NULL);
    return;
  }
  struct timespec left = { .tv_sec = seconds, .tv_nsec = 0 };
  while (nanosleep(&left, &left) == -1 && errno == EINTR) {}
}

/* The fd-5 line, and a line on fd 2 when it could not be written (a full disk, a reader that stalled). */
static void write_log_line(const char *line, size_t length, int timeout)
{
  errno = 0;
  if (write_all(5, line, length, timeout) == 0) return;
  char pid[24], seconds[24];
  if (errno)
    say("pid ", decimal((long)getpid(), pid), ": unable to write the log line to fd 5: ", error_text(errno), NULL);
  else
    say("pid ", decimal((long)getpid(), pid), ": unable to write the log line to fd 5: no room in it for ",
        decimal(timeout, seconds), " seconds: line dropped", NULL);
}

/* --- the host ------------------------------------------------------------ */

/*
 * Linux: the runtimes need /proc (Bun aborts with a crash report without
 * it); refuse before the greeting, with one line, rather than let it crash.
 */
static void require_proc(void)
{
#ifdef __linux__
  if (access("/proc/self/exe", F_OK) == 0) return;
  say("/proc is not mounted (/proc/self/exe: ", error_text(errno), "): the runtime needs it", NULL);
  write_all(1, TEMPORARY_REPLY, sizeof TEMPORARY_REPLY - 1, DEFAULT_TIMEOUT);
  _exit(1);
#endif
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

/* The client's answer when no login runs and the session did not end itself; the caller said why on fd 2. */
static int temporary_reply(int output)
{
  write_all(output, TEMPORARY_REPLY, sizeof TEMPORARY_REPLY - 1, DEFAULT_TIMEOUT);
  return 1;
}

static int temporary_failure(int output, const char *why, const char *detail)
{
  say(why, detail, NULL);
  return temporary_reply(output);
}

/* Missing arguments: the client gets the usage line, as from the C program, and the operator a line. */
static int usage(int argc)
{
  static const char USAGE[] = "-ERR usage: qmail-popup hostname subprogram [args...] (qmail-popup " VERSION ")\r\n";
  say("usage: qmail-popup hostname subprogram [args...]: ", argc < 2 ? "no hostname and no subprogram" : "no subprogram", NULL);
  write_all(1, USAGE, sizeof USAGE - 1, DEFAULT_TIMEOUT);
  return 1;
}

static long long now_ms(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Bytes as fd 2 may show them: printable ASCII, anything else `?`, at most size - 1. */
static const char *printable(const char *bytes, size_t n, char *out, size_t size)
{
  size_t i;
  for (i = 0; i < n && i < size - 1; i++) out[i] = (bytes[i] > ' ' && bytes[i] < 127) ? bytes[i] : '?';
  out[i] = 0;
  return out;
}

/* What listening to the runtime came to, besides its end of file. */
struct hearing {
  /* Why it was cut off: refused (and the key of the item refused), or wedged. NULL if it ended by itself. */
  const char *refused;
  char key[40];
  int wedged;
  /* The version it said, as fd 2 may show it; empty if none. */
  char version[64];
};

/*
 * Listens to the runtime until it closes the control socket, taking each
 * item as it comes. Anything refused, or nothing said for quiet_ms (a
 * runtime stopped, looping or blocked), and it is killed at once. Before
 * the plan nothing said is kept, so keep-alives never fill the buffer.
 */
static void listen_to(int control, pid_t session, struct buffer *said, struct plan *plan, const char *host, long long quiet_ms, struct hearing *heard)
{
  size_t at = 0;
  long long deadline = now_ms() + quiet_ms;
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) { heard->wedged = 1; break; }
    struct pollfd p = { .fd = control, .events = POLLIN };
    int ready = poll(&p, 1, left > 1000000000 ? 1000000000 : (int)left);
    if (ready == -1 && errno == EINTR) continue;
    if (ready == 0) continue;
    if (ready == -1) { heard->refused = "unable to read the control socket"; break; }
    if (said->length == said->size) { heard->refused = "more than the message limit"; break; }
    ssize_t n = read(control, said->bytes + said->length, said->size - said->length);
    if (n == -1 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return;
    said->length += (size_t)n;
    if (said->length > said->touched) said->touched = said->length;
    for (;;) {
      const char *item;
      size_t length;
      int got = next_netstring(said, &at, &item, &length);
      if (got == 0) break;
      if (got < 0) { heard->refused = got == -1 ? "a malformed netstring" : "an item longer than the message limit"; break; }
      if (plan->phase == VERSION_FIRST && length > 8 && memcmp(item, "version=", 8) == 0)
        printable(item + 8, length - 8, heard->version, sizeof heard->version);
      if ((heard->refused = take_item(plan, item, length, host))) {
        const char *equals = memchr(item, '=', length);
        printable(item, equals ? (size_t)(equals - item) : length, heard->key, sizeof heard->key);
        break;
      }
      deadline = now_ms() + quiet_ms;
    }
    if (heard->refused) break;
    if (plan->phase == VERSION_FIRST || plan->phase == SESSION) {
      memmove(said->bytes, said->bytes + at, said->length - at);
      said->length -= at;
      at = 0;
    }
  }
  /* A resident's session (no process of ours) ends when we close the socket. */
  if (session > 0) kill(session, SIGKILL);
}

/* Starts the runtime on a control socket and introduces us: our end of the socket, or -1 (said why). */
static int start_runtime(const char *runtime, struct buffer *introduction, pid_t *session, int timeout)
{
  int control[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) == -1) {
    say("unable to make a socket pair: ", error_text(errno), NULL);
    return -1;
  }
  *session = fork();
  if (*session == -1) { say("unable to fork: ", error_text(errno), NULL); return -1; }
  if (*session == 0) exec_runtime(runtime, control[1]);
  close(control[1]);
  write_all(control[0], introduction->bytes, introduction->length, timeout);
  wipe_buffer(introduction);
  return control[0];
}

/* A runtime that said something else than its version first, or nothing: not this release's, or damaged. */
static void say_unversioned(const char *runtime, const struct hearing *heard, int status)
{
  char text[24];
  const char *how = heard->refused ? "said something else" : heard->wedged ? "said nothing in time"
                    : WIFSIGNALED(status) ? "was killed by signal " : "ended with status ";
  const char *number = heard->refused || heard->wedged ? ""
                       : decimal(WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), text);
  say("the runtime ", runtime, " ", how, number, " before its version: it is not qmail-popup-runtime " VERSION
      " or it is damaged: install qmail-popup and qmail-popup-runtime from one release", NULL);
}

/* qmail-popup --version: ours, the runtime's (asked through the protocol), and whether they match. */
static int report_versions(const char *runtime)
{
  /* IDENTITY itself, never a copy (a compiler turns a copy of a constant into immediate stores of its bytes): strings(1) finds "qmail-popup VERSION" once in this program. */
  write_all(1, IDENTITY, sizeof IDENTITY - 1, DEFAULT_TIMEOUT);
  write_all(1, "\n", 1, DEFAULT_TIMEOUT);
  struct buffer query = control_buffer(MESSAGE_LIMIT), said = control_buffer(4096);
  struct plan plan = { .end = -1 };
  struct hearing heard = { 0 };
  pid_t session = -1;
  int control = -1, status = 0;
  if (!runtime) say("unable to find ", RUNTIME_NAME, NULL);
  else if (netstring(&query, "version", VERSION, strlen(VERSION)) || netstring(&query, "query", "version", 7))
    say("out of memory", NULL);
  else if ((control = start_runtime(runtime, &query, &session, DEFAULT_TIMEOUT)) != -1) {
    listen_to(control, session, &said, &plan, "", VERSION_QUERY_SECONDS * 1000LL, &heard);
    close(control);
    while (waitpid(session, &status, 0) == -1 && errno == EINTR) {}
  }
  if (!heard.version[0]) {
    static const char UNKNOWN[] = "qmail-popup-runtime unknown\nthe versions differ\n";
    write_all(1, UNKNOWN, sizeof UNKNOWN - 1, DEFAULT_TIMEOUT);
    if (control != -1) say_unversioned(runtime, &heard, status);
    return 1;
  }
  char line[sizeof heard.version + 64] = "qmail-popup-runtime ";
  strcat(line, heard.version);
  strcat(line, plan.phase == SESSION ? "\nthe versions match\n" : "\nthe versions differ\n");
  write_all(1, line, strlen(line), DEFAULT_TIMEOUT);
  if (plan.phase != SESSION) { say(version_problem, NULL); return 1; }
  return 0;
}

int main(int argc, char **argv)
{
  require_proc();
  harden();
  const char *runtime = runtime_path(argv[0]);
  if (argc == 2 && strcmp(argv[1], "--version") == 0) return report_versions(runtime);
  if (argc >= 2 && strcmp(argv[1], "--resident") == 0) return resident_main(argc, argv, runtime);
  if (argc < 3) return usage(argc);
  if (!runtime) return temporary_failure(1, "unable to find ", RUNTIME_NAME);

  int timeout = timeout_of(getenv("POP3TIMEOUT"));
  /* The introduction, then (once it is sent and wiped) what the runtime says, in control_bytes. */
  struct buffer introduction = control_buffer(MESSAGE_LIMIT), said = control_buffer(MESSAGE_LIMIT);
  if (introduce(&introduction, argc, argv, timeout)) return temporary_failure(1, "out of memory", "");

  /* Resident mode: the connection handed to a runtime already running, or ours started as ever. */
  pid_t session = -1;
  int control = -1;
  /* Quiet for longer than a runtime ever waits, it is wedged. */
  long long quiet_seconds = 2LL * timeout + WEDGE_MARGIN;
  const char *resident = getenv("QMAIL_POPUP_RESIDENT");
  if (resident && *resident) {
    const char *only = getenv("QMAIL_POPUP_RESIDENT_ONLY");
    int taken = 0;
    control = resident_connect(resident);
    if (control != -1 && resident_hand_over(control) == 0) {
      write_all(control, introduction.bytes, introduction.length, timeout);
      taken = resident_taken(control, resident, quiet_seconds * 1000);
    } else if (control != -1) say("resident ", resident, ": unable to hand over the connection", NULL);
    /* Taken (or silent), the connection is the resident's: a failure is the session's, never a second greeting. */
    if (taken == -1) {
      char text[24];
      say("resident ", resident, ": said nothing for ", decimal((long)quiet_seconds, text), " seconds (2 x POP3TIMEOUT + 10)", NULL);
      return temporary_reply(1);
    }
    if (taken == 1) wipe_buffer(&introduction);
    else {
      if (control != -1) close(control);
      control = -1;
      if (only && *only) return temporary_failure(1, "QMAIL_POPUP_RESIDENT_ONLY is set: no runtime of our own", "");
    }
  }
  if (control == -1 && (control = start_runtime(runtime, &introduction, &session, timeout)) == -1) return temporary_reply(1);
  /* Listen until the runtime is done. */
  struct plan plan = { .end = -1, .client = 1, .timeout = timeout };
  struct hearing heard = { 0 };
  listen_to(control, session, &said, &plan, argv[1], quiet_seconds * 1000, &heard);
  close(control);
  /* A resident's session that ended with its plan or its end is as a runtime that exited 0. */
  int status = 0;
  while (session > 0 && waitpid(session, &status, 0) == -1)
    if (errno != EINTR) return temporary_failure(1, "unable to wait for the runtime", "");
  restore_inherited_flags();
  if (session == -1 && !plan.complete && plan.end < 0 && !heard.refused && !heard.wedged)
    return temporary_failure(plan.client, "the resident runtime ended the session without a plan or an end", "");

  if (!plan.complete || heard.refused || heard.wedged || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    wipe_buffer(&said);
    char text[24];
    if (plan.phase == VERSION_FIRST && heard.refused && heard.version[0]) return temporary_failure(plan.client, version_problem, "");
    if (plan.phase == VERSION_FIRST) {
      say_unversioned(runtime, &heard, status);
      return temporary_reply(plan.client);
    }
    if (heard.wedged && session == -1) {
      /* Not ours to kill, and it still holds the connection: the client's socket is shut down under it. */
      say("the resident's worker said nothing for ", decimal((long)quiet_seconds, text), " seconds (2 x POP3TIMEOUT + 10): the connection is closed", NULL);
      temporary_reply(plan.client);
      shutdown(plan.client, SHUT_RDWR);
      shutdown(0, SHUT_RDWR);
      return 1;
    }
    if (heard.wedged) {
      say("the runtime said nothing for ", decimal((long)quiet_seconds, text), " seconds (2 x POP3TIMEOUT + 10): killed", NULL);
      return temporary_reply(plan.client);
    }
    if (heard.refused) {
      if (heard.key[0]) say("the runtime's plan refused, item ", heard.key, ": ", heard.refused, NULL);
      else say("the runtime's plan refused: ", heard.refused, NULL);
      return temporary_reply(plan.client);
    }
    /* No login: an end the runtime announced is the session's; any other end of it is a failure. */
    if (plan.end >= 0) return plan.end;
    if (WIFSIGNALED(status))
      return temporary_failure(plan.client, "the runtime was killed by signal ", decimal(WTERMSIG(status), text));
    if (WEXITSTATUS(status) == 0) return temporary_failure(plan.client, "the runtime's plan is cut short", "");
    return temporary_failure(plan.client, "the runtime failed with status ", decimal(WEXITSTATUS(status), text));
  }

  enum outcome outcome = run_login(argv + 2, &plan);
  if (outcome == FAIL) delay_failure();
  if (plan.reply[outcome] && plan.reply_length[outcome] > 0)
    write_all(plan.output, plan.reply[outcome], plan.reply_length[outcome], plan.timeout);
  if (plan.line[outcome] && plan.line_length[outcome] > 0)
    write_log_line(plan.line[outcome], plan.line_length[outcome], plan.timeout);
  wipe_buffer(&said);
  return outcome == ACCEPT ? 0 : 1;
}
