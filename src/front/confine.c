/*
 * The runtime's confinement: what the front does to its forked child, after
 * the limits and signals and before execve(2) of the runtime, so that the
 * JavaScript engine that parses every byte a stranger sends before login
 * holds no privilege, cannot get one back, touches no file, and opens no
 * socket. The identity and RLIMIT_FSIZE everywhere; the rest is Linux's
 * (FreeBSD's Capsicum would need the runtime's own help after exec: see
 * the man page).
 *
 *  1. Identity (started as root only): QMAIL_POPUP_UID and QMAIL_POPUP_GID
 *     if set (numeric, as tcpserver -u -g); else the account qmailpopup,
 *     read from /etc/passwd by hand (this program is static: no NSS); else
 *     65534, with a line on fd 2. A uid or gid of 0 is refused. Groups
 *     first, then gid, then uid, checked afterwards; the capability
 *     bounding set emptied before.
 *  2. No way back up: no_new_privs; no capabilities; not dumpable from
 *     its first instruction: its real gid is not its effective gid, so
 *     execve(2) leaves it undumpable (an exec whose real and effective
 *     ids are equal makes a process dumpable again). That exec is then
 *     "secure": it clears PR_SET_PDEATHSIG, which the runtime arms again
 *     itself (serve.ts, endWithFront), and caps the stack at 8 MB.
 *  3. Nothing to touch: Landlock, reading and executing only beneath the
 *     system's program and library directories, /proc, the CPU and cgroup
 *     files of /sys, the random devices and the runtime's own directory
 *     (and /dev/null for writing);
 *     writing, creating, removing nothing; no TCP bind or connect; no
 *     signal and no abstract unix socket outside its own domain.
 *     Where the kernel has no Landlock (but seccomp), RLIMIT_FSIZE 0 in
 *     its place, if neither fd 2 nor fd 5 is a regular file (the runtime
 *     writes those); not as well: it stops memfd writes too, and under
 *     qemu-user (the arm64 tests), whose /proc/self/maps is a memfd, the
 *     emulated Bun then crashed.
 *  4. No way out: a seccomp filter, a deny-list answering EPERM.
 *
 * A compile-time QMAIL_POPUP_UNCONFINED (the bench's unconfined row, never
 * a runtime switch) leaves out everything but the identity: the walls
 * are marked unused for that build.
 */
#define _GNU_SOURCE
#include "confine.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

/* The account the runtime runs as, by default; `make runtime-account` creates it. */
#define RUNTIME_ACCOUNT "qmailpopup"
#define FALLBACK_ID 65534
/* nogroup: the runtime's real gid (see become). */
#define NOGROUP 65534

/*
 * A line on fd 2, if fd 2 is the operator's: where the front was started
 * with it closed, it may be one of the front's own descriptors (the control
 * socket's other end), all close-on-exec; an inherited one never is.
 */
static void say_line(const char *text, size_t n)
{
  int flags = fcntl(2, F_GETFD);
  if (flags == -1 || (flags & FD_CLOEXEC)) return;
  while (write(2, text, n) == -1 && errno == EINTR) {}
}

/* One line on fd 2; the runtime is not started. */
static void refuse(const char *what, const char *why)
{
  char line[512] = "qmail-popup: unable to confine the runtime: ";
  size_t n = strlen(line);
  for (const char *p = what; *p && n < sizeof line - 2; p++) line[n++] = *p;
  for (const char *p = why; p && *p && n < sizeof line - 2; p++) line[n++] = *p;
  line[n++] = '\n';
  say_line(line, n);
  _exit(111);
}

/*
 * strerror(3) in glibc's words where musl's differ, for the errors this
 * program's calls can meet (fork, pipes and sockets, execve, a write to fd 5,
 * waitpid, /proc, the confinement's): its lines on fd 2 read as they did
 * when it was linked with glibc ("Out of memory" was "Cannot allocate memory").
 */
const char *error_text(int e)
{
  static const struct { int number; const char *text; } GLIBC[] = {
    { ENOMEM, "Cannot allocate memory" }, { EMFILE, "Too many open files" }, { EIO, "Input/output error" },
    { ELIBBAD, "Accessing a corrupted shared library" }, { ELOOP, "Too many levels of symbolic links" },
    { ENAMETOOLONG, "File name too long" }, { ECHILD, "No child processes" }, { EDQUOT, "Disk quota exceeded" },
    { EBUSY, "Device or resource busy" }, { EOPNOTSUPP, "Operation not supported" }, { EXDEV, "Invalid cross-device link" },
    { ENOTSOCK, "Socket operation on non-socket" }, { ENOTCONN, "Transport endpoint is not connected" },
    { ETIMEDOUT, "Connection timed out" }, { EOVERFLOW, "Value too large for defined data type" },
    { ENOTTY, "Inappropriate ioctl for device" }, { ESPIPE, "Illegal seek" }, { EMSGSIZE, "Message too long" },
    { EUCLEAN, "Structure needs cleaning" },
  };
  for (size_t i = 0; i < sizeof GLIBC / sizeof GLIBC[0]; i++)
    if (GLIBC[i].number == e) return GLIBC[i].text;
  return strerror(e);
}

/* --- 1. identity ------------------------------------------------------------ */

long confine_decimal(const char *s, size_t n, long limit)
{
  long x = 0;
  if (n == 0 || n > 10) return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    x = x * 10 + (s[i] - '0');
  }
  return x > limit ? -1 : x;
}

/* A decimal id, 0 to 2^32-2 (2^32-1 is (uid_t)-1, "no change"); -1 if anything else. */
static long parse_id(const char *s, size_t n)
{
  return confine_decimal(s, n, 0xfffffffeL);
}

/* The uid and gid of RUNTIME_ACCOUNT in /etc/passwd; 0 if found. Read a line at a time, in small reads: under softlimit -m this program has little room, and each page of stack it touches stays with it while it waits. */
static int account_ids(long *uid, long *gid)
{
  int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
  if (fd == -1) return -1;
  static const char name[] = RUNTIME_ACCOUNT ":";
  char line[1024], chunk[512];
  size_t length = 0, at = 0, got = 0;
  int found = -1, skipping = 0;
  for (;;) {
    ssize_t r = 1;
    if (at == got) {
      r = read(fd, chunk, sizeof chunk);
      if (r == -1 && errno == EINTR) continue;
      at = 0;
      got = r > 0 ? (size_t)r : 0;
    }
    char c = r > 0 ? chunk[at++] : '\n';
    if (r <= 0 || c == '\n') {
      line[length] = 0;
      /* name:password:uid:gid:... */
      char *u, *g, *end;
      if (!skipping && strncmp(line, name, sizeof name - 1) == 0 && (u = strchr(line + sizeof name - 1, ':'))
          && (g = strchr(++u, ':')) && (end = strchr(g + 1, ':'))) {
        *uid = parse_id(u, (size_t)(g - u));
        *gid = parse_id(g + 1, (size_t)(end - g - 1));
        found = *uid == -1 || *gid == -1 ? -1 : 0;
        break;
      }
      if (r <= 0) break;
      length = 0;
      skipping = 0;
    } else if (length < sizeof line - 1) line[length++] = c;
    else skipping = 1;
  }
  close(fd);
  return found;
}

/* The ids to run the runtime as, from the environment, the account, or the fallback. */
static void runtime_ids(uid_t *uid, gid_t *gid)
{
  const char *u = getenv("QMAIL_POPUP_UID"), *g = getenv("QMAIL_POPUP_GID");
  long uid_number, gid_number;
  if (u || g) {
    if (!u || !g) refuse("QMAIL_POPUP_UID and QMAIL_POPUP_GID must be set together", "");
    uid_number = parse_id(u, strlen(u));
    gid_number = parse_id(g, strlen(g));
    if (uid_number == -1 || gid_number == -1) refuse("QMAIL_POPUP_UID and QMAIL_POPUP_GID must be numbers (id -u qmailpopup)", "");
  } else if (account_ids(&uid_number, &gid_number) != 0) {
    static const char warning[] = "qmail-popup: warning: no account " RUNTIME_ACCOUNT " in /etc/passwd and no QMAIL_POPUP_UID:"
                                  " the runtime runs as uid and gid 65534, shared with other daemons;"
                                  " create the account (make runtime-account) or set QMAIL_POPUP_UID and QMAIL_POPUP_GID\n";
    say_line(warning, sizeof warning - 1);
    uid_number = gid_number = FALLBACK_ID;
  }
  if (uid_number == 0 || gid_number == 0) refuse("the runtime may not run as uid or gid 0", " (QMAIL_POPUP_UID, QMAIL_POPUP_GID, or the account " RUNTIME_ACCOUNT ")");
  *uid = (uid_t)uid_number;
  *gid = (gid_t)gid_number;
}

/* Root's way back, closed: no capability can be regained, then the ids, checked. */
static void become(uid_t uid, gid_t gid)
{
#ifdef __linux__
  /* Every capability the kernel knows: past the last, EINVAL. */
  for (unsigned long cap = 0;; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
    if (errno == EINVAL && cap > 0) break;
    refuse("PR_CAPBSET_DROP: ", error_text(errno));
  }
#endif
  /* A real gid that owns nothing and is not the effective one: see 2. above. */
  gid_t real = gid == NOGROUP ? NOGROUP - 1 : NOGROUP;
  if (setgroups(0, NULL) == -1) refuse("setgroups: ", error_text(errno));
  if (setresgid(real, gid, gid) == -1) refuse("setresgid: ", error_text(errno));
  if (setresuid(uid, uid, uid) == -1) refuse("setresuid: ", error_text(errno));
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1) refuse("getresuid: ", error_text(errno));
  if (ru != uid || eu != uid || su != uid || rg != real || eg != gid || sg != gid || getgroups(0, NULL) != 0)
    refuse("the ids did not change as asked", "");
  if (setresuid(0, 0, 0) != -1 || setresgid(0, 0, 0) != -1) refuse("root could be regained", "");
}

/* RLIMIT_FSIZE 0, but not where the runtime writes a regular file it was given (tcpserver ... 2>log 5>file). */
static void __attribute__((unused)) no_file_growth(void)
{
  struct stat st;
  for (int fd = 2; fd <= 5; fd += 3)
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) return;
  struct rlimit none = { 0, 0 };
  if (setrlimit(RLIMIT_FSIZE, &none) == -1) refuse("RLIMIT_FSIZE: ", error_text(errno));
}

#ifdef __linux__

/* --- 3. Landlock ------------------------------------------------------------ */

/* The kernel's interface (linux/landlock.h), spelled here: the C library's headers may predate ABI 6. */
struct landlock_attr { uint64_t handled_access_fs, handled_access_net, scoped; };
struct landlock_path { uint64_t allowed_access; int32_t parent_fd; } __attribute__((packed));
#define LL_VERSION 1u
#define LL_RULE_PATH_BENEATH 1
#define LL_EXECUTE (1ull << 0)
#define LL_WRITE_FILE (1ull << 1)
#define LL_READ_FILE (1ull << 2)
#define LL_READ_DIR (1ull << 3)
/* EXECUTE to MAKE_SYM (ABI 1), REFER (2), TRUNCATE (3), IOCTL_DEV (5). */
#define LL_FS_ABI1 ((1ull << 13) - 1)
#define LL_REFER (1ull << 13)
#define LL_TRUNCATE (1ull << 14)
#define LL_IOCTL_DEV (1ull << 15)
#define LL_NET_BIND_TCP (1ull << 0)
#define LL_NET_CONNECT_TCP (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0)
#define LL_SCOPE_SIGNAL (1ull << 1)
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

/*
 * What every runtime reads (and executes) to start, measured with strace
 * (the man page lists it per runtime): the dynamic linker's cache and the
 * libraries, the programs a run script names, /proc (its own files; other
 * processes' are closed to it by their owner and by Landlock's ptrace
 * rule), the CPU and cgroup files of /sys, the random source.
 */
static const char *const READABLE[] = {
  "/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/etc/ssl/openssl.cnf", "/etc/localtime", "/proc", "/sys/devices/system/cpu", "/sys/devices/system/node", "/sys/fs/cgroup",
  "/sys/kernel/mm/transparent_hugepage",
  "/dev/urandom", "/dev/random",
};

static void allow(int ruleset, const char *path, uint64_t more)
{
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd == -1) return;
  struct stat st;
  struct landlock_path rule = { .allowed_access = LL_READ_FILE | LL_EXECUTE | more, .parent_fd = fd };
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) rule.allowed_access |= LL_READ_DIR;
  if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &rule, 0) == -1) refuse("landlock_add_rule: ", error_text(errno));
  close(fd);
}

/*
 * Nothing written anywhere; read only what starting takes. The rules are
 * made while we are still root (any path opens), enforced after the change
 * of ids. -1: a kernel without Landlock (the man page says so).
 */
static int __attribute__((unused)) landlock_rules(const char *runtime)
{
  long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_VERSION);
  if (abi < 1) return -1;
  struct landlock_attr attr = { .handled_access_fs = LL_FS_ABI1 };
  size_t size = sizeof attr.handled_access_fs;
  if (abi >= 2) attr.handled_access_fs |= LL_REFER;
  if (abi >= 3) attr.handled_access_fs |= LL_TRUNCATE;
  if (abi >= 4) { attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP; size = offsetof(struct landlock_attr, scoped); }
  if (abi >= 5) attr.handled_access_fs |= LL_IOCTL_DEV;
  if (abi >= 6) { attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL; size = sizeof attr; }
  int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
  if (ruleset == -1) refuse("landlock_create_ruleset: ", error_text(errno));
  for (size_t i = 0; i < sizeof READABLE / sizeof READABLE[0]; i++) allow(ruleset, READABLE[i], 0);
  /* Where fd 2 is closed, Bun and Node open /dev/null in its place, for reading and writing. */
  allow(ruleset, "/dev/null", LL_WRITE_FILE);
  /* The runtime's own directory, where a link to it leads: a run script's bundle lies next to it. */
  char real[PATH_MAX];
  if (realpath(runtime, real)) {
    *strrchr(real, '/') = 0;
    allow(ruleset, *real ? real : "/", 0);
  }
  return ruleset;
}

static void __attribute__((unused)) landlock_enforce(int ruleset)
{
  if (ruleset == -1) return;
  if (syscall(SYS_landlock_restrict_self, ruleset, 0) == -1) refuse("landlock_restrict_self: ", error_text(errno));
  close(ruleset);
}

/* --- 4. seccomp ------------------------------------------------------------- */

/*
 * The kernel's interface (linux/seccomp.h, linux/filter.h, linux/audit.h),
 * spelled here as Landlock's is: musl, the front's C library, has no
 * headers for it.
 */
struct filter_instruction { uint16_t code; uint8_t jt, jf; uint32_t k; };
struct filter_program { unsigned short len; struct filter_instruction *filter; };
struct seccomp_call { int32_t nr; uint32_t arch; uint64_t instruction_pointer; uint64_t args[6]; };
/* BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_JMP|BPF_JGE|BPF_K, BPF_JMP|BPF_JSET|BPF_K, BPF_RET|BPF_K */
#define LOAD_WORD 0x20
#define JUMP_EQUAL 0x15
#define JUMP_AT_LEAST 0x35
#define JUMP_ANY_BIT 0x45
#define RETURN 0x06
#define SECCOMP_MODE_FILTER 1
#define SECCOMP_ALLOW 0x7fff0000u
#define SECCOMP_ERRNO 0x00050000u

#if defined(__x86_64__)
/* EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE */
#define AUDIT_ARCH_HERE 0xc000003eu
#elif defined(__aarch64__)
/* EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE */
#define AUDIT_ARCH_HERE 0xc00000b7u
#else
#error "qmail-popup's seccomp filter knows x86_64 and aarch64"
#endif

/*
 * What no runtime needs and an attacker wants, answered EPERM: new sockets
 * (none of the runtimes makes one to start: measured; socketpair(2), which
 * Deno's signal handling uses, reaches nobody), other ids, tracing,
 * other processes' memory, namespaces and mounts, the kernel's loaders and
 * keyrings, io_uring (its operations pass by this filter). A deny-list, not
 * an allow-list: three JIT runtimes whose system calls change with each
 * release would break on the next upgrade, while these calls are the escape.
 */
static const int DENIED[] = {
  SYS_socket, SYS_connect, SYS_bind, SYS_listen, SYS_accept, SYS_accept4,
  SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_kcmp,
  SYS_tkill, SYS_pidfd_open, SYS_pidfd_send_signal,
#ifdef SYS_pidfd_getfd
  SYS_pidfd_getfd,
#endif
  SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid, SYS_setresgid,
  SYS_setfsuid, SYS_setfsgid, SYS_setgroups, SYS_capset,
  SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_unshare, SYS_setns,
#ifdef SYS_open_tree
  SYS_open_tree, SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick,
#endif
#ifdef SYS_mount_setattr
  SYS_mount_setattr,
#endif
  SYS_bpf, SYS_perf_event_open, SYS_keyctl, SYS_add_key, SYS_request_key, SYS_userfaultfd,
  SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
  SYS_kexec_load, SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_reboot,
  SYS_swapon, SYS_swapoff, SYS_acct, SYS_quotactl, SYS_syslog, SYS_personality,
  SYS_name_to_handle_at, SYS_open_by_handle_at, SYS_settimeofday, SYS_clock_settime, SYS_clock_adjtime,
  SYS_adjtimex, SYS_sethostname, SYS_setdomainname, SYS_vhangup,
#ifdef SYS_kexec_file_load
  SYS_kexec_file_load,
#endif
#ifdef __x86_64__
  SYS_iopl, SYS_ioperm, SYS_uselib,
#endif
};

/* Signals only to itself: the call's first argument (a pid) must be our own. */
static const int SELF_ONLY[] = { SYS_kill, SYS_tgkill, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo };

/* A new process, but no new namespace. */
#define NAMESPACES (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP)

#define NR offsetof(struct seccomp_call, nr)
#define ARCH offsetof(struct seccomp_call, arch)
/* The low half of an argument (little-endian): what the kernel takes of an int. */
#define ARG(i) offsetof(struct seccomp_call, args[i])

/* 0 once the filter is on; -1 where the kernel (or qemu-user) has none. accepting: a resident's worker, which accepts on the socket it was given. */
static int __attribute__((unused)) seccomp(int accepting)
{
  struct filter_instruction program[256];
  size_t n = 0;
  /* Jumps to the three answers at the end, patched once the end is known. */
  enum { TO_ALLOW = 1000, TO_DENY, TO_NOSYS };
  struct jump { size_t at; int jt, jf; } jump[256];
  size_t jumps = 0;
#define STMT(code, k) (program[n++] = (struct filter_instruction){ code, 0, 0, k })
#define JUMP(k, jt, jf) (jump[jumps++] = (struct jump){ n, jt, jf }, program[n++] = (struct filter_instruction){ JUMP_EQUAL, 0, 0, k })
#define JSET(k, jt, jf) (jump[jumps++] = (struct jump){ n, jt, jf }, program[n++] = (struct filter_instruction){ JUMP_ANY_BIT, 0, 0, k })
  STMT(LOAD_WORD, ARCH);
  JUMP(AUDIT_ARCH_HERE, 0, TO_DENY);
  STMT(LOAD_WORD, NR);
#ifdef __x86_64__
  /* The x32 ABI's numbers: the same calls by other numbers. */
  jump[jumps++] = (struct jump){ n, TO_DENY, 0 };
  program[n++] = (struct filter_instruction){ JUMP_AT_LEAST, 0, 0, 0x40000000 };
#endif
  for (size_t i = 0; i < sizeof DENIED / sizeof DENIED[0]; i++)
    if (!accepting || (DENIED[i] != SYS_accept && DENIED[i] != SYS_accept4)) JUMP((unsigned)DENIED[i], TO_DENY, 0);
  /* clone3's flags are behind a pointer: ENOSYS, and the C library falls back to clone. */
  JUMP(SYS_clone3, TO_NOSYS, 0);
  /* TIOCSTI: no typing into a terminal the runtime was given. */
  /* Each test below ends in an answer; the next is reached with the number still loaded. */
  JUMP(SYS_ioctl, 0, 2);
  STMT(LOAD_WORD, ARG(1));
  JUMP(TIOCSTI, TO_DENY, TO_ALLOW);
  JUMP(SYS_clone, 0, 2);
  STMT(LOAD_WORD, ARG(0));
  JSET(NAMESPACES, TO_DENY, TO_ALLOW);
  uint32_t self = (uint32_t)getpid();
  for (size_t i = 0; i < sizeof SELF_ONLY / sizeof SELF_ONLY[0]; i++) {
    JUMP((unsigned)SELF_ONLY[i], 0, 2);
    STMT(LOAD_WORD, ARG(0));
    JUMP(self, TO_ALLOW, TO_DENY);
  }
  size_t allow_at = n;
  STMT(RETURN, SECCOMP_ALLOW);
  STMT(RETURN, SECCOMP_ERRNO | EPERM);
  STMT(RETURN, SECCOMP_ERRNO | ENOSYS);
  for (size_t i = 0; i < jumps; i++) {
    size_t at = jump[i].at;
    int targets[2] = { jump[i].jt, jump[i].jf };
    for (int t = 0; t < 2; t++) {
      size_t offset = targets[t] >= TO_ALLOW ? allow_at + (size_t)(targets[t] - TO_ALLOW) - at - 1 : (size_t)targets[t];
      if (offset > 255) refuse("the seccomp filter is too long", "");
      if (t == 0) program[at].jt = (unsigned char)offset; else program[at].jf = (unsigned char)offset;
    }
  }
  struct filter_program fprog = { .len = (unsigned short)n, .filter = program };
  /* A kernel without seccomp filters (or qemu-user, which emulates none): this wall is missing, as Landlock's may be. */
  if (syscall(SYS_seccomp, SECCOMP_MODE_FILTER, 0, &fprog) == 0) return 0;
  if (errno != ENOSYS && errno != EINVAL) refuse("seccomp: ", error_text(errno));
  return -1;
}

#endif

void confine_ids(uid_t *uid, gid_t *gid)
{
  runtime_ids(uid, gid);
}

/* listening: a resident's worker's socket, -1 for a runtime of one connection. */
static void confine(const char *runtime, int listening)
{
  pid_t front = getppid();
#if defined(__linux__) && !defined(QMAIL_POPUP_UNCONFINED)
  int ruleset = landlock_rules(runtime);
#endif
  if (getuid() == 0 || geteuid() == 0) {
    uid_t uid;
    gid_t gid;
    runtime_ids(&uid, &gid);
    become(uid, gid);
  }
#ifdef __linux__
  /* The change of ids cleared it: the runtime does not outlive the front (where exec keeps it: started as non-root). */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1) refuse("PR_SET_PDEATHSIG: ", error_text(errno));
#endif
  if (getppid() != front) _exit(111);
  /*
   * A worker listens as the account: that is the identity a front reads
   * with SO_PEERCRED (the socket was bound by root, which a front would
   * otherwise see); listen(2) is denied from here on.
   */
  if (listening != -1 && listen(listening, SOMAXCONN) == -1) refuse("listen: ", error_text(errno));
#ifndef QMAIL_POPUP_UNCONFINED
#ifdef __linux__
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) refuse("PR_SET_NO_NEW_PRIVS: ", error_text(errno));
  landlock_enforce(ruleset);
  int filtered = seccomp(listening != -1);
  /*
   * In Landlock's place where a kernel (before 5.13) has none; not where
   * seccomp is missing too, as under qemu-user, whose /proc/self/maps is a
   * memfd this limit would stop.
   */
  if (ruleset == -1 && filtered == 0) no_file_growth();
#else
  no_file_growth();
#endif
#endif
  (void)runtime;
}

void confine_runtime(const char *runtime)
{
  confine(runtime, -1);
}

void confine_worker(const char *runtime, int listening)
{
  confine(runtime, listening);
}
